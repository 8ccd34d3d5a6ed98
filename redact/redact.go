// Package redact keeps application tokens out of logs: a token is the key to
// an application, so logs carry only its first characters.
package redact

import "strings"

// tokenLength is the length of the tokens the system issues (26 characters
// of lowercase base32).
const tokenLength = 26

func tokenChar(c byte) bool { return c >= 'a' && c <= 'z' || c >= '2' && c <= '7' }

// Tokens shortens every token-shaped word in s (26 characters of lowercase
// base32 standing alone) to its first four characters and an ellipsis.
func Tokens(s string) string {
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); {
		if !tokenChar(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && tokenChar(s[j]) {
			j++
		}
		if j-i == tokenLength {
			b.WriteString(s[i:i+4] + "…")
			changed = true
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	if !changed {
		return s
	}
	return b.String()
}
