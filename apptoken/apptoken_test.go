package apptoken

import "testing"

func TestNewIsValid(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tok := New()
		if !Valid(tok) {
			t.Fatalf("New() = %q, which Valid refuses", tok)
		}
		if seen[tok] {
			t.Fatalf("New() repeated %q", tok)
		}
		seen[tok] = true
	}
}

func TestValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    string
		want bool
	}{
		{"abcdefghijklmnopqrstuvwxyz", true},
		{"234567abcdefghijklmnopqrst", true},
		{"abcdefghijklmnopqrstuvwxy", false},   // 25
		{"abcdefghijklmnopqrstuvwxyza", false}, // 27
		{"Abcdefghijklmnopqrstuvwxyz", false},  // upper case
		{"abcdefghijklmnopqrstuvwxy1", false},  // not base32
		{"abcdefghijklmnopqrstuvwxy8", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := Valid(tc.s); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
