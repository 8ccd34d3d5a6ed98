package searchindex

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// MappingProblems lists how an index's mapping falls short of the
// definition (index.json): every field and sub-field the definition maps
// must be there with its type, since search relies on each — token and
// chat_number filter hits to one chat, number orders them, body's ngram and
// prefix sub-fields match parts of words. None means the mapping serves.
func (c *Client) MappingProblems(ctx context.Context, index string) ([]string, error) {
	want, err := definedFields()
	if err != nil {
		return nil, err
	}
	props, err := c.Mapping(ctx, index)
	if err != nil {
		return nil, err
	}
	return mappingProblems(want, props), nil
}

// definedField is a field the definition maps: its dotted name ("body" or
// "body.ngram") and type.
type definedField struct{ name, typ string }

// definedFields are the definition's fields and sub-fields, in the order
// index.json lists them, each field before its sub-fields.
func definedFields() ([]definedField, error) {
	var def struct {
		Mappings struct {
			Properties json.RawMessage `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal([]byte(definition), &def); err != nil {
		return nil, fmt.Errorf("index definition: %w", err)
	}
	return fieldsOf(def.Mappings.Properties, "")
}

// fieldsOf reads an object of fields in its order, which a map would lose.
func fieldsOf(raw json.RawMessage, prefix string) ([]definedField, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if _, err := dec.Token(); err != nil { // {
		return nil, fmt.Errorf("index definition: %w", err)
	}
	var out []definedField
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("index definition: %w", err)
		}
		var f struct {
			Type   string          `json:"type"`
			Fields json.RawMessage `json:"fields"`
		}
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("index definition: field %v: %w", key, err)
		}
		name := prefix + fmt.Sprint(key)
		out = append(out, definedField{name, f.Type})
		if len(f.Fields) > 0 {
			subs, err := fieldsOf(f.Fields, name+".")
			if err != nil {
				return nil, err
			}
			out = append(out, subs...)
		}
	}
	return out, nil
}

// numeric reports the field types a term filter on a number works on
// (Elasticsearch maps the definition's long fields as long; the stand-in
// used in tests reports them as numeric): one serves for another.
func numeric(typ string) bool {
	switch typ {
	case "long", "integer", "short", "unsigned_long", "numeric":
		return true
	}
	return false
}

// mappingProblems compares the fields an index maps with the definition's.
func mappingProblems(want []definedField, props map[string]Field) []string {
	var out []string
	for _, w := range want {
		got, found := lookup(props, w.name)
		switch {
		case !found:
			out = append(out, w.name+" is missing")
		case got.Type != w.typ && !(numeric(w.typ) && numeric(got.Type)):
			out = append(out, fmt.Sprintf("%s is %q, want %s", w.name, got.Type, w.typ))
		}
	}
	return out
}

// lookup finds a field, or with a dotted name a sub-field, of a mapping.
func lookup(props map[string]Field, name string) (Field, bool) {
	parent, sub, nested := strings.Cut(name, ".")
	f, found := props[parent]
	if !nested || !found {
		return f, found
	}
	f, found = f.Fields[sub]
	return f, found
}
