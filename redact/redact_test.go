package redact

import "testing"

func TestTokens(t *testing.T) {
	t.Parallel()
	tok := "abcdefghijklmnopqrstuvwx23"
	tests := []struct{ in, want string }{
		{"/applications/" + tok + "/chats/1", "/applications/abcd…/chats/1"},
		{"msg:" + tok + ":3:7", "msg:abcd…:3:7"},
		{tok, "abcd…"},
		{"no token here", "no token here"},
		{tok + "x", tok + "x"}, // 27 characters: not a token
		{"/applications/Abcdefghijklmnopqrstuvwx23", "/applications/Abcdefghijklmnopqrstuvwx23"},
	}
	for _, tc := range tests {
		if got := Tokens(tc.in); got != tc.want {
			t.Errorf("Tokens(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
