package commands

import (
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tok := NewToken()
		if !ValidToken(tok) || seen[tok] {
			t.Fatalf("token %q invalid or repeated", tok)
		}
		seen[tok] = true
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 26), strings.Repeat("a", 25) + "1", strings.Repeat("a", 27), strings.Repeat("a", 25) + "/"} {
		if ValidToken(bad) {
			t.Errorf("ValidToken(%q) = true", bad)
		}
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		check func() error
		ok    bool
	}{
		{"name", func() error { return validateName("general") }, true},
		{"name of 255 multibyte characters", func() error { return validateName(strings.Repeat("ü", 255)) }, true},
		{"name of 256 characters", func() error { return validateName(strings.Repeat("a", 256)) }, false},
		{"empty name", func() error { return validateName("") }, false},
		{"blank name", func() error { return validateName(" \t\n") }, false},
		{"body", func() error { return validateBody("hi") }, true},
		{"body of 64 KiB", func() error { return validateBody(strings.Repeat("a", 64<<10)) }, true},
		{"body over 64 KiB", func() error { return validateBody(strings.Repeat("a", 64<<10+1)) }, false},
		{"blank body", func() error { return validateBody("  ") }, false},
	}
	for _, tc := range tests {
		if err := tc.check(); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok = %v", tc.name, err, tc.ok)
		}
	}
}
