package searchindex

import (
	"slices"
	"testing"
)

// TestMappingProblems compares mappings with the definition: a mapping
// built as index.json says, or with numbers the stand-in's way, serves; what
// lacks a field or has another type is named, field by field, in the
// definition's order.
func TestMappingProblems(t *testing.T) {
	want, err := definedFields()
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{"token", "chat_number", "number", "body", "body.ngram", "body.prefix"}; !slices.Equal(names(want), got) {
		t.Fatalf("defined fields %v, want %v", names(want), got)
	}
	body := Field{Type: "text", Fields: map[string]Field{"ngram": {Type: "text"}, "prefix": {Type: "text"}}}
	mapping := func(edit func(map[string]Field)) map[string]Field {
		m := map[string]Field{"token": {Type: "keyword"}, "chat_number": {Type: "long"}, "number": {Type: "long"}, "body": body}
		edit(m)
		return m
	}
	tests := []struct {
		name  string
		props map[string]Field
		want  []string
	}{
		{"as defined", mapping(func(map[string]Field) {}), nil},
		{"numbers as the stand-in maps them", mapping(func(m map[string]Field) {
			m["chat_number"], m["number"] = Field{Type: "numeric"}, Field{Type: "integer"}
		}), nil},
		{"a field more", mapping(func(m map[string]Field) { m["extra"] = Field{Type: "keyword"} }), nil},
		{"no token", mapping(func(m map[string]Field) { delete(m, "token") }), []string{"token is missing"}},
		{"dynamic mapping", mapping(func(m map[string]Field) {
			m["token"], m["chat_number"] = Field{Type: "text"}, Field{Type: "keyword"}
		}), []string{`token is "text", want keyword`, `chat_number is "keyword", want long`}},
		{"no body", mapping(func(m map[string]Field) { delete(m, "body") }),
			[]string{"body is missing", "body.ngram is missing", "body.prefix is missing"}},
		{"no sub-fields", mapping(func(m map[string]Field) { m["body"] = Field{Type: "text"} }),
			[]string{"body.ngram is missing", "body.prefix is missing"}},
		{"a sub-field of another type", mapping(func(m map[string]Field) {
			m["body"] = Field{Type: "keyword", Fields: map[string]Field{"ngram": {Type: "text"}, "prefix": {Type: "keyword"}}}
		}), []string{`body is "keyword", want text`, `body.prefix is "keyword", want text`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mappingProblems(want, tc.props); !slices.Equal(got, tc.want) {
				t.Errorf("problems %q, want %q", got, tc.want)
			}
		})
	}
}

func names(fields []definedField) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}
