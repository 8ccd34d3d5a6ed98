package commands

import (
	"strings"
	"unicode/utf8"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/apptoken"
)

const (
	// MaxNameLength is the most characters a name may have.
	MaxNameLength = 255
	// MaxBodyBytes is the largest message body, in bytes of UTF-8 text.
	MaxBodyBytes = 64 << 10
)

func validateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return apperr.Validation("name must not be empty")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLength {
		return apperr.Validation("name has %d characters; at most %d are allowed", n, MaxNameLength)
	}
	return nil
}

func validateBody(body string) error {
	if strings.TrimSpace(body) == "" {
		return apperr.Validation("body must not be empty")
	}
	if len(body) > MaxBodyBytes {
		return apperr.Validation("body has %d bytes; at most %d are allowed", len(body), MaxBodyBytes)
	}
	return nil
}

// ValidToken reports whether s has the shape of a token this system issues.
// A malformed token names nothing, so callers answer 404 without a lookup.
func ValidToken(s string) bool { return apptoken.Valid(s) }

func checkToken(token string) error {
	if !ValidToken(token) {
		return apperr.NotFound("application not found")
	}
	return nil
}

// maxNumber is the largest chat or message number: a Redis bitmap offset.
const maxNumber = 1<<32 - 1

func checkNumber(n int64, what string) error {
	if n < 1 || n > maxNumber {
		return apperr.NotFound("%s not found", what)
	}
	return nil
}
