package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/chatsys/chat/apperr"
)

// checkText finds in data, one valid JSON value, what encoding/json would
// change or choose without a word, so that a body is stored as it was sent
// or refused: bytes that are not UTF-8 and escaped surrogates without their
// pair (both decoded as U+FFFD), and a key an object gives twice (the last
// would win; keys are compared as encoding/json matches them to fields,
// case-insensitively). The error names the field where it was found.
func checkText(data []byte) error {
	s := textScanner{data: data}
	return s.value("")
}

// textScanner walks a valid JSON value: it relies on the syntax being
// right and checks only the text.
type textScanner struct {
	data []byte
	i    int
}

// value checks the value at s.i and moves past it. field is the top-level
// field it belongs to, "" for the value itself.
func (s *textScanner) value(field string) error {
	s.space()
	if s.i >= len(s.data) {
		return nil
	}
	switch s.data[s.i] {
	case '{':
		return s.object(field)
	case '[':
		return s.array(field)
	case '"':
		return s.str(describe(field, "the body"))
	}
	for s.i < len(s.data) && !isDelimiter(s.data[s.i]) { // a number, true, false or null
		s.i++
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isDelimiter(c byte) bool { return isSpace(c) || c == ',' || c == ']' || c == '}' }

func (s *textScanner) space() {
	for s.i < len(s.data) && isSpace(s.data[s.i]) {
		s.i++
	}
}

// describe names the field for an error message, or what else if there is
// no field.
func describe(field, otherwise string) string {
	if field == "" {
		return otherwise
	}
	return fmt.Sprintf("field %q", field)
}

func (s *textScanner) object(field string) error {
	s.i++ // {
	seen := map[string]bool{}
	for {
		s.space()
		switch s.data[s.i] {
		case '}':
			s.i++
			return nil
		case ',':
			s.i++
			s.space()
		}
		start := s.i
		if err := s.str(describe(field, "a field name")); err != nil {
			return err
		}
		var key string
		if err := json.Unmarshal(s.data[start:s.i], &key); err != nil {
			return apperr.InvalidJSON("the request body is not a valid JSON object: %v", err)
		}
		folded := foldKey(key)
		if seen[folded] {
			if field == "" {
				return apperr.InvalidJSON("field %q is given twice; a field may be given once", key)
			}
			return apperr.InvalidJSON("field %q holds an object that gives %q twice; a key may be given once", field, key)
		}
		seen[folded] = true
		s.space()
		s.i++ // :
		inner := field
		if inner == "" {
			inner = key
		}
		if err := s.value(inner); err != nil {
			return err
		}
	}
}

func (s *textScanner) array(field string) error {
	s.i++ // [
	for {
		s.space()
		switch s.data[s.i] {
		case ']':
			s.i++
			return nil
		case ',':
			s.i++
		}
		if err := s.value(field); err != nil {
			return err
		}
	}
}

// str checks the string at s.i and moves past it; where names it in errors.
func (s *textScanner) str(where string) error {
	s.i++ // the opening quote
	for {
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\' && s.data[s.i+1] == 'u':
			r := s.escaped(s.i)
			s.i += 6
			if !utf16.IsSurrogate(r) {
				continue
			}
			if low := s.escaped(s.i); r >= 0xdc00 || low < 0xdc00 || low > 0xdfff {
				return apperr.InvalidJSON(`%s holds the escaped surrogate \u%04x without its pair, which is no character`, where, r)
			}
			s.i += 6
		case c == '\\':
			s.i += 2
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.data[s.i:])
			if r == utf8.RuneError && n == 1 {
				return apperr.InvalidJSON("%s holds bytes that are not UTF-8; JSON text must be UTF-8", where)
			}
			s.i += n
		}
	}
}

// escaped returns the character of the \uXXXX escape at i, or -1 if there
// is none.
func (s *textScanner) escaped(i int) rune {
	if i+6 > len(s.data) || s.data[i] != '\\' || s.data[i+1] != 'u' {
		return -1
	}
	n, err := strconv.ParseUint(string(s.data[i+2:i+6]), 16, 16)
	if err != nil {
		return -1
	}
	return rune(n)
}

// foldKey folds a key as encoding/json does to match it to a field: keys
// that fold alike name the same field.
func foldKey(key string) string {
	out := make([]rune, 0, len(key))
	for _, r := range key {
		// The smallest rune of r's fold orbit stands for all of it.
		for {
			next := unicode.SimpleFold(r)
			if next <= r {
				r = next
				break
			}
			r = next
		}
		out = append(out, r)
	}
	return string(out)
}
