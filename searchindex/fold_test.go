package searchindex

import (
	"testing"

	"golang.org/x/text/unicode/norm"
)

func TestFoldAccents(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Hello, world!", "Hello, world!"},
		{"Crème brûlée", "Creme brulee"},
		{"e\u0301", "e"}, // decomposed accent
		{"\u0301", ""},   // an accent alone
		{"Łódź", "Lodz"}, // a stroke NFD leaves whole, and accents
		{"Søren Ørsted", "Soren Orsted"},
		{"Straße STRAẞE", "Strasse STRASSE"},
		{"Æsir encyclopædia", "AEsir encyclopaedia"},
		{"Œuvre cœur", "OEuvre coeur"},
		{"Đakovo đak", "Dakovo dak"},
		{"Þórr þing", "THorr thing"},
		{"Ðað", "Dad"},
		{"Ħal ħamrun", "Hal hamrun"},
		{"ǽ Ǿ", "ae O"},                    // decomposes to æ/Ø plus a mark: both steps apply
		{"ﬁne ﬂow", "fine flow"},           // ligatures
		{"ＦＵＬＬ ｗｉｄｔｈ １２", "FULL width 12"}, // fullwidth forms
		{"Ⓒⓘⓡⓒⓛⓔ", "Circle"},
		{"ꜱᴍᴀʟʟ ᴄᴀᴘꜱ", "SMALL CAPS"},
		{"Ɓɗ ƙƴ ɛɔ ŋ", "Bd ky eo n"},
		{"日本語 Ελληνικά русский", "日本語 Ελληνικα русскии"}, // other scripts lose marks only
		{"🎉 ½ ©", "🎉 ½ ©"},
	}
	for _, tc := range tests {
		if got := FoldAccents(tc.in); got != tc.want {
			t.Errorf("FoldAccents(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestLatinFoldTable checks the table itself: each letter is one NFD leaves
// whole (others lose their marks first and never reach the table), and each
// spelling is ASCII.
func TestLatinFoldTable(t *testing.T) {
	for r, a := range latinFold {
		if d := norm.NFD.String(string(r)); d != string(r) {
			t.Errorf("%q (U+%04X) decomposes to %q: the table never sees it", r, r, d)
		}
		for _, c := range a {
			if c >= 0x80 || a == "" {
				t.Errorf("%q (U+%04X) maps to %q, not ASCII", r, r, a)
			}
		}
	}
}
