package plainjson

import "testing"

func TestMarshal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"html characters as they are", map[string]string{"body": "<b>&</b>"}, `{"body":"<b>&</b>"}`},
		{"multibyte text as it is", []string{"héllo 日本語 🙂"}, `["héllo 日本語 🙂"]`},
		// JSON requires control characters escaped; encoding/json also
		// escapes U+2028 and U+2029 for JavaScript's sake.
		{"control characters escaped", "a\x01\n\u2028", `"a\u0001\n\u2028"`},
		{"no trailing newline", 1, `1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("Marshal = %s, want %s", got, tc.want)
			}
		})
	}
}
