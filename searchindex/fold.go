package searchindex

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// FoldAccents folds text to plain letters the way Elasticsearch's
// asciifolding would: diacritics are removed (Unicode NFD, combining marks
// dropped), and the Latin letters that NFD leaves whole (ł, ø, đ, ħ…),
// ligatures (æ, œ, ß, ﬁ…), fullwidth and circled forms are spelled in ASCII,
// so that "Łódź" and "lodz", "Straße" and "strasse" index and search alike.
// It runs in the application, on indexed text and queries alike, because
// Elasticsearch has asciifolding as a token filter while the engine
// standing in for it in tests has it only as a char filter.
//
// Changing it changes indexed text: documents indexed before a change keep
// the old folding until `chat replay search` rebuilds the index.
func FoldAccents(s string) string {
	d := norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(d))
	for _, r := range d {
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case unicode.Is(unicode.Mn, r):
		default:
			if a, ok := asciiOf(r); ok {
				b.WriteString(a)
			} else {
				b.WriteRune(r)
			}
		}
	}
	return norm.NFC.String(b.String())
}

// asciiOf spells r in ASCII when asciifolding would.
func asciiOf(r rune) (string, bool) {
	switch {
	case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII
		return string(r - 0xFF01 + '!'), true
	case r >= 0x24B6 && r <= 0x24CF: // circled capital letters
		return string(r - 0x24B6 + 'A'), true
	case r >= 0x24D0 && r <= 0x24E9: // circled small letters
		return string(r - 0x24D0 + 'a'), true
	}
	a, ok := latinFold[r]
	return a, ok
}

// latinFold maps the Latin letters that have no canonical decomposition to
// their ASCII spelling. A letter with a decomposition (é, ǽ, ǿ) loses its
// marks first and then, if still not ASCII (æ, ø), is found here.
var latinFold = map[rune]string{
	// Latin-1 Supplement.
	'Æ': "AE", 'æ': "ae", 'Ð': "D", 'ð': "d", 'Ø': "O", 'ø': "o",
	'Þ': "TH", 'þ': "th", 'ß': "ss",
	// Latin Extended-A.
	'Đ': "D", 'đ': "d", 'Ħ': "H", 'ħ': "h", 'ı': "i", 'Ĳ': "IJ", 'ĳ': "ij",
	'ĸ': "q", 'Ŀ': "L", 'ŀ': "l", 'Ł': "L", 'ł': "l", 'ŉ': "'n", 'Ŋ': "N",
	'ŋ': "n", 'Œ': "OE", 'œ': "oe", 'Ŧ': "T", 'ŧ': "t", 'ſ': "s",
	// Latin Extended-B: letters with strokes, hooks and bars, and digraphs.
	'ƀ': "b", 'Ɓ': "B", 'Ƃ': "B", 'ƃ': "b", 'Ɔ': "O", 'Ƈ': "C", 'ƈ': "c",
	'Ɖ': "D", 'Ɗ': "D", 'Ƌ': "D", 'ƌ': "d", 'Ǝ': "E", 'Ɛ': "E", 'Ƒ': "F",
	'ƒ': "f", 'Ɠ': "G", 'ƕ': "hv", 'Ɩ': "I", 'Ɨ': "I", 'Ƙ': "K", 'ƙ': "k",
	'ƚ': "l", 'Ɯ': "M", 'Ɲ': "N", 'ƞ': "n", 'Ɵ': "O", 'Ƥ': "P", 'ƥ': "p",
	'ƫ': "t", 'Ƭ': "T", 'ƭ': "t", 'Ʈ': "T", 'Ʋ': "V", 'Ƴ': "Y", 'ƴ': "y",
	'Ƶ': "Z", 'ƶ': "z", 'Ǆ': "DZ", 'ǅ': "Dz", 'ǆ': "dz", 'Ǉ': "LJ", 'ǈ': "Lj",
	'ǉ': "lj", 'Ǌ': "NJ", 'ǋ': "Nj", 'ǌ': "nj", 'Ǥ': "G", 'ǥ': "g", 'Ǳ': "DZ",
	'ǲ': "Dz", 'ǳ': "dz", 'Ƕ': "HV", 'ȡ': "d", 'Ȣ': "OU", 'ȣ': "ou", 'Ȥ': "Z",
	'ȥ': "z", 'ȴ': "l", 'ȵ': "n", 'ȶ': "t", 'ȷ': "j", 'ȸ': "db", 'ȹ': "qp",
	'Ⱥ': "A", 'Ȼ': "C", 'ȼ': "c", 'Ƚ': "L", 'Ⱦ': "T", 'ȿ': "s", 'ɀ': "z",
	'Ƀ': "B", 'Ʉ': "U", 'Ʌ': "V", 'Ɇ': "E", 'ɇ': "e", 'Ɉ': "J", 'ɉ': "j",
	'Ɋ': "Q", 'ɋ': "q", 'Ɍ': "R", 'ɍ': "r", 'Ɏ': "Y", 'ɏ': "y",
	// IPA letters used in alphabets (African languages among others), and
	// small capitals.
	'ɓ': "b", 'ɔ': "o", 'ɕ': "c", 'ɖ': "d", 'ɗ': "d", 'ɛ': "e", 'ɠ': "g",
	'ɡ': "g", 'ɢ': "G", 'ɦ': "h", 'ɨ': "i", 'ɪ': "I", 'ɫ': "l", 'ɬ': "l",
	'ɭ': "l", 'ɱ': "m", 'ɲ': "n", 'ɳ': "n", 'ɴ': "N", 'ɵ': "o", 'ɶ': "OE",
	'ɼ': "r", 'ɽ': "r", 'ɾ': "r", 'ʀ': "R", 'ʂ': "s", 'ʈ': "t", 'ʉ': "u",
	'ʋ': "v", 'ʏ': "Y", 'ʐ': "z", 'ʑ': "z", 'ʙ': "B", 'ʜ': "H", 'ʝ': "j",
	'ʟ': "L", 'ʠ': "q",
	'ᴀ': "A", 'ᴁ': "AE", 'ᴃ': "B", 'ᴄ': "C", 'ᴅ': "D", 'ᴆ': "D", 'ᴇ': "E",
	'ᴊ': "J", 'ᴋ': "K", 'ᴌ': "L", 'ᴍ': "M", 'ᴏ': "O", 'ᴘ': "P", 'ᴛ': "T",
	'ᴜ': "U", 'ᴠ': "V", 'ᴡ': "W", 'ᴢ': "Z", 'ꜰ': "F", 'ꜱ': "S",
	// Latin Extended Additional.
	'ẚ': "a", 'ẜ': "s", 'ẝ': "s", 'ẞ': "SS", 'Ỻ': "LL", 'ỻ': "ll", 'Ỽ': "V",
	'ỽ': "v", 'Ỿ': "Y", 'ỿ': "y",
	// Latin Extended-C.
	'Ⱡ': "L", 'ⱡ': "l", 'Ɫ': "L", 'Ᵽ': "P", 'Ɽ': "R", 'ⱥ': "a", 'ⱦ': "t",
	'Ⱨ': "H", 'ⱨ': "h", 'Ⱪ': "K", 'ⱪ': "k", 'Ⱬ': "Z", 'ⱬ': "z", 'Ɱ': "M",
	'ⱱ': "v", 'Ⱳ': "W", 'ⱳ': "w", 'ⱴ': "v", 'ⱸ': "e", 'ⱺ': "o", 'Ȿ': "S",
	'Ɀ': "Z",
	// Latin ligatures.
	'ﬀ': "ff", 'ﬁ': "fi", 'ﬂ': "fl", 'ﬃ': "ffi", 'ﬄ': "ffl", 'ﬅ': "st", 'ﬆ': "st",
}
