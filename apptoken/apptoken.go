// Package apptoken defines the shape of an application token: 128 random
// bits written as 26 characters of lowercase base32.
package apptoken

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// Length is the number of characters of a token.
const Length = 26

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// New returns 128 random bits as 26 lowercase base32 characters: URL-safe,
// and immune to case-insensitive collations.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return strings.ToLower(encoding.EncodeToString(b[:]))
}

// IsChar reports whether c can appear in a token: a lowercase letter or a
// digit from 2 to 7.
func IsChar(c byte) bool { return c >= 'a' && c <= 'z' || c >= '2' && c <= '7' }

// Valid reports whether s has the shape of a token.
func Valid(s string) bool {
	if len(s) != Length {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsChar(s[i]) {
			return false
		}
	}
	return true
}
