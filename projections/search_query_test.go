package projections_test

import (
	"fmt"
	"testing"

	"github.com/chatsys/chat/projections"
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
		if got := projections.QueryTerms(tc.q); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("QueryTerms(%q) = %q, want %q", tc.q, got, tc.want)
		}
	}
}
