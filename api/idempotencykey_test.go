package api

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []string
		want   string
		ok     bool
	}{
		{"no header", nil, "", true},
		{"a UUID", []string{"8e03978e-40d5-43e8-bc93-6894a57f9324"}, "8e03978e-40d5-43e8-bc93-6894a57f9324", true},
		{"one character", []string{"k"}, "k", true},
		{"255 characters", []string{strings.Repeat("k", 255)}, strings.Repeat("k", 255), true},
		{"every visible character", []string{"!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~"}, "!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~", true},
		{"surrounding blanks", []string{" \tk1\t "}, "k1", true},
		{"a Structured Field string", []string{`"8e03978e"`}, "8e03978e", true},
		{"escapes in quotes", []string{`"a\"b\\c"`}, `a"b\c`, true},
		{"empty", []string{""}, "", false},
		{"blank", []string{"  "}, "", false},
		{"empty quotes", []string{`""`}, "", false},
		{"256 characters", []string{strings.Repeat("k", 256)}, "", false},
		{"256 characters in quotes", []string{`"` + strings.Repeat("k", 256) + `"`}, "", false},
		{"a space inside", []string{"a b"}, "", false},
		{"a space inside quotes", []string{`"a b"`}, "", false},
		{"a control character", []string{"a\x01b"}, "", false},
		{"non-ASCII", []string{"clé"}, "", false},
		{"an unterminated quote", []string{`"abc`}, "", false},
		{"a lone quote", []string{`"`}, "", false},
		{"an unescaped quote inside", []string{`"a"b"`}, "", false},
		{"an unknown escape", []string{`"a\nb"`}, "", false},
		{"a trailing backslash", []string{`"ab\"`}, "", false},
		{"two headers", []string{"a", "b"}, "", false},
		{"two identical headers", []string{"a", "a"}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKey(tc.values)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("parseKey(%q) = %q, %v; want %q, ok %v", tc.values, got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, errInvalidKey) {
				t.Errorf("error %v is not errInvalidKey", err)
			}
		})
	}
}
