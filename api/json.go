package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/internal/plainjson"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	jsonHeaders(w)
	w.WriteHeader(code)
	_ = plainjson.NewEncoder(w).Encode(v)
}

// jsonHeaders marks an answer as JSON. Its text is not HTML-escaped, so
// browsers are told not to guess another type from it.
func jsonHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// decode decodes the JSON object readBody read into dst. An absent body
// decodes as {} when optional is true. A body is taken as it was sent or
// refused: text that is not UTF-8, and a field given twice, are
// invalid_json (checkText). Errors carry the slugs of api/openapi.yaml:
// invalid_json (400); readBody's are payload_too_large (413),
// unsupported_media_type (415) and request_timeout (408).
func decode(r *http.Request, dst any, optional bool) error {
	body, ok := bodyOf(r)
	if !ok {
		return errors.New("the route decodes a body it did not read (readBody)")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		if optional {
			return nil
		}
		return apperr.InvalidJSON("the request body is empty; a JSON object is expected")
	}
	// null, an array or a scalar would decode as no field at all, or fail
	// naming a Go type.
	if trimmed[0] != '{' {
		return apperr.InvalidJSON("the request body is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return apperr.InvalidJSON("field %q must be a %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
		}
		var numErr *numberError
		if errors.As(err, &numErr) {
			return apperr.InvalidJSON("%s", numErr.Error())
		}
		return apperr.InvalidJSON("the request body is not a valid JSON object: %v", err)
	}
	// Only JSON white space may follow the object: More would not report
	// a stray } or ].
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) != 0 {
		return apperr.InvalidJSON("the request body holds more than a JSON object")
	}
	return checkText(body)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int64", "int", "float64":
		return "number"
	case "struct", "map":
		return "object"
	}
	return goKind
}

// optString is a JSON string field that remembers whether it was present.
type optString struct {
	Set   bool
	Value string
}

func (o *optString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if err := json.Unmarshal(b, &o.Value); err != nil {
		return err
	}
	o.Set = true
	return nil
}

// flexNumber is a whole number sent as a JSON number or a numeric string, as
// the seed's clients send chat_number.
type flexNumber struct {
	Set   bool
	Value int64
}

type numberError struct{ text string }

func (e *numberError) Error() string { return e.text }

func (f *flexNumber) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return &numberError{fmt.Sprintf("chat_number must be a whole number, got %s", b)}
	}
	f.Set, f.Value = true, n
	return nil
}

// pathNumber parses a number from the path; anything else names nothing.
// A number is written one way only (no sign, no leading zero), so that a
// resource has one path: …/chats/01 and …/chats/+1 are not chat 1.
func pathNumber(s, what string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != s {
		return 0, apperr.NotFound("%s not found", what)
	}
	return n, nil
}
