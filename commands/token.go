package commands

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewToken returns 128 random bits as 26 lowercase base32 characters: URL-
// safe, and immune to case-insensitive collations.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return strings.ToLower(tokenEncoding.EncodeToString(b[:]))
}
