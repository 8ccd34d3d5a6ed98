// Package plainjson encodes JSON as encoding/json does, except that <, > and
// & are written as they are. The system's JSON is stored and served as JSON,
// never embedded in HTML, and the escapes (\u003c) would make a message of
// '<' six times its size in the event store, the search index and every
// answer.
package plainjson

import (
	"bytes"
	"encoding/json"
	"io"
)

// NewEncoder returns an encoder to w that does not escape HTML.
func NewEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// Marshal is json.Marshal without HTML escaping.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	// Encode ends each value with a newline; Marshal does not.
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}
