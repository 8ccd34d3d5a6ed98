package searchindex

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestQueryTerms(t *testing.T) {
	tests := []struct {
		q    string
		want []string
	}{
		{"hello world", []string{"hello", "world"}},
		{"  Crème   brûlée ", []string{"Creme", "brulee"}},
		{"\u0301", nil},                  // a lone combining accent folds to nothing
		{"e\u0301", []string{"e"}},       // decomposed accent
		{"!!! ?, ...", nil},              // punctuation alone
		{"hello !!!", []string{"hello"}}, // a punctuation term is left out
		{"what? C++ 3.14", []string{"what?", "C++", "3.14"}},
		{"🎉", []string{"🎉"}}, // a symbol is kept
		{"$ % ^ + =", nil},   // currency, modifier and math signs are not indexed
		{"", nil},
	}
	for _, tc := range tests {
		if got := QueryTerms(tc.q); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("QueryTerms(%q) = %q, want %q", tc.q, got, tc.want)
		}
	}
}

func TestGramTerm(t *testing.T) {
	tests := []struct{ term, want string }{
		{"hello", "hello"},
		{"supercalifragilistic", "supercalifragilistic"},                       // 20: as is
		{"supercalifragilisticexpialidocious", "supercalifragilistic"},         // cut to 20
		{"SUPERCALIFRAGILISTICE", "SUPERCALIFRAGILISTIC"},                      // 21
		{"foo-supercalifragilisticexpialidocious", "foo-supercalifragilistic"}, // each word on its own
		{"supercalifragilisticexpialidocious's", "supercalifragilistic"},       // a joined word is one
		{"3.14159265358979323846264", "3.141592653589793238"},
		{"日本語日本語日本語日本語日本語日本語日本語日本語", "日本語日本語日本語日本語日本語日本語日本"},
	}
	for _, tc := range tests {
		if got := gramTerm(tc.term); got != tc.want {
			t.Errorf("gramTerm(%q) = %q, want %q", tc.term, got, tc.want)
		}
	}
}

// TestDefinitionMatchesTheQuery checks the index definition against what
// the query assumes of it: the gram fields hold grams of at most maxGram
// characters, and search with a plain lowercase analyzer.
func TestDefinitionMatchesTheQuery(t *testing.T) {
	t.Parallel()
	var def struct {
		Settings struct {
			Analysis struct {
				Filter map[string]struct {
					Type    string `json:"type"`
					MinGram int    `json:"min_gram"`
					MaxGram int    `json:"max_gram"`
				} `json:"filter"`
			} `json:"analysis"`
		} `json:"settings"`
		Mappings struct {
			Properties map[string]struct {
				Type   string `json:"type"`
				Fields map[string]struct {
					Analyzer       string `json:"analyzer"`
					SearchAnalyzer string `json:"search_analyzer"`
				} `json:"fields"`
			} `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal([]byte(definition), &def); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	for name, f := range def.Settings.Analysis.Filter {
		if f.MaxGram != maxGram {
			t.Errorf("filter %s has max_gram %d; the query cuts words to %d", name, f.MaxGram, maxGram)
		}
	}
	body := def.Mappings.Properties["body"]
	for _, sub := range []string{"prefix", "ngram"} {
		if f, ok := body.Fields[sub]; !ok || f.SearchAnalyzer != "body_search" {
			t.Errorf("body.%s is %+v; the query matches it with body_search", sub, f)
		}
	}
}
