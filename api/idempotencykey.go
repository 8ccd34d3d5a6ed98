package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/chatsys/chat/apperr"
)

// idempotencyHeader is the request header that carries a key.
const idempotencyHeader = "Idempotency-Key"

// maxKeyLength is the longest key accepted, in characters.
const maxKeyLength = 255

// errInvalidKey means an Idempotency-Key header is not a key this service
// accepts.
var errInvalidKey = errors.New("invalid idempotency key")

// commandKey reads a command's Idempotency-Key header: "" when there is none.
func commandKey(r *http.Request) (string, error) {
	key, err := parseKey(r.Header.Values(idempotencyHeader))
	if err != nil {
		return "", apperr.InvalidIdempotencyKey("%s", err.Error())
	}
	return key, nil
}

// parseKey returns the key that a request's Idempotency-Key header values
// carry: "" when there is none. A key is 1 to 255 characters of visible
// ASCII, sent as it is or as a Structured Field string in double quotes (the
// form the IETF draft describes), so `abc` and `"abc"` are the same key.
// Anything else, or two keys, is refused: guessing which one the client meant
// could replay the wrong request.
func parseKey(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("%w: send one %s header, not %d", errInvalidKey, idempotencyHeader, len(values))
	}
	v := strings.Trim(values[0], " \t")
	if strings.HasPrefix(v, `"`) {
		var err error
		if v, err = unquoteKey(v); err != nil {
			return "", err
		}
	}
	if v == "" {
		return "", fmt.Errorf("%w: the %s header is empty", errInvalidKey, idempotencyHeader)
	}
	if len(v) > maxKeyLength {
		return "", fmt.Errorf("%w: the key has %d characters; at most %d are allowed", errInvalidKey, len(v), maxKeyLength)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e {
			return "", fmt.Errorf("%w: a key is visible ASCII characters only (no spaces or control characters)", errInvalidKey)
		}
	}
	return v, nil
}

// unquoteKey decodes a Structured Field string (RFC 8941 §3.3.3): the quotes
// around it, and \" and \\ inside.
func unquoteKey(s string) (string, error) {
	if len(s) < 2 || !strings.HasSuffix(s, `"`) {
		return "", fmt.Errorf("%w: a quoted key must end with a double quote", errInvalidKey)
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) || s[i+1] != '"' && s[i+1] != '\\' {
				return "", fmt.Errorf(`%w: inside quotes a backslash escapes only \" and \\`, errInvalidKey)
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return "", fmt.Errorf(`%w: a double quote inside a quoted key must be escaped as \"`, errInvalidKey)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
