// Package redact keeps application tokens out of logs: a token is the key to
// an application, so logs carry only its first characters.
package redact

import (
	"strings"

	"github.com/chatsys/chat/apptoken"
)

// Tokens shortens every token-shaped word in s (a run of token characters
// exactly as long as a token) to its first four characters and an ellipsis.
func Tokens(s string) string {
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); {
		if !apptoken.IsChar(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && apptoken.IsChar(s[j]) {
			j++
		}
		if j-i == apptoken.Length {
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
