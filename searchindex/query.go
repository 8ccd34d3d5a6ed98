package searchindex

import (
	"context"
	"encoding/json"
	"strings"
	"unicode"
)

// MaxResultWindow is Elasticsearch's index.max_result_window: a search
// whose from+size is beyond it is refused.
const MaxResultWindow = 10000

// Query asks for a page of a chat's messages that match every term of Q.
type Query struct {
	Token      string
	Chat       int64
	Q          string
	From, Size int64
}

// Hits is a page of a search's results.
type Hits struct {
	Total   int64   // every match, beyond the page too
	Numbers []int64 // the page's message numbers, best first
}

// Search runs a query: each term of q must match the whole word, a word's
// prefix or (3 characters or more) an infix, in any of the body's fields.
// Ranked by relevance, then number.
func (ix *Index) Search(ctx context.Context, q Query) (Hits, error) {
	body, err := json.Marshal(searchBody(q))
	if err != nil {
		return Hits{}, err
	}
	var out struct {
		Hits struct {
			Total struct {
				Value int64 `json:"value"`
			} `json:"total"`
			Hits []struct {
				Source struct {
					Number int64 `json:"number"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	es := ix.c.es
	res, err := es.Search(es.Search.WithContext(ctx), es.Search.WithIndex(ix.Alias), es.Search.WithBody(strings.NewReader(string(body))))
	if err := answer("search", res, err, &out); err != nil {
		return Hits{}, err
	}
	hits := Hits{Total: out.Hits.Total.Value, Numbers: make([]int64, len(out.Hits.Hits))}
	for i, h := range out.Hits.Hits {
		hits.Numbers[i] = h.Source.Number
	}
	return hits, nil
}

// Count returns how many documents a chat has.
func (ix *Index) Count(ctx context.Context, token string, chat int64) (int64, error) {
	body, err := json.Marshal(map[string]any{"query": map[string]any{"bool": map[string]any{"filter": chatFilter(token, chat)}}})
	if err != nil {
		return 0, err
	}
	var out struct {
		Count int64 `json:"count"`
	}
	es := ix.c.es
	res, err := es.Count(es.Count.WithContext(ctx), es.Count.WithIndex(ix.Alias), es.Count.WithBody(strings.NewReader(string(body))))
	if err := answer("count", res, err, &out); err != nil {
		return 0, err
	}
	return out.Count, nil
}

// chatFilter selects the documents of one chat.
func chatFilter(token string, chat int64) []any {
	return []any{
		map[string]any{"term": map[string]any{"token": token}},
		map[string]any{"term": map[string]any{"chat_number": chat}},
	}
}

// searchBody is the query: one bool clause per term, each a should over
// the three fields. Terms are only ever match queries: no user input
// reaches query_string or a wildcard.
func searchBody(q Query) map[string]any {
	var must []any
	for _, term := range QueryTerms(q.Q) {
		grams := gramTerm(term)
		should := make([]any, 0, 3)
		for _, m := range []struct{ field, query string }{{"body", term}, {"body.prefix", grams}, {"body.ngram", grams}} {
			should = append(should, map[string]any{"match": map[string]any{m.field: map[string]any{"query": m.query, "operator": "and"}}})
		}
		must = append(must, map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}})
	}
	return map[string]any{
		"query": map[string]any{"bool": map[string]any{
			"filter": chatFilter(q.Token, q.Chat),
			"must":   must,
		}},
		"sort":             []any{map[string]any{"_score": "desc"}, map[string]any{"number": "asc"}},
		"from":             q.From,
		"size":             q.Size,
		"track_total_hits": true,
		"_source":          []string{"number"},
	}
}

// QueryTerms folds q as indexed text is folded and splits it at white
// space. A term with no letter, digit or symbol (punctuation, or an accent
// that folding removed) is left out: the engine's tokenizer would find
// nothing in it, and a clause with nothing to match would match no message.
func QueryTerms(q string) []string {
	var out []string
	for _, term := range strings.Fields(FoldAccents(q)) {
		if strings.IndexFunc(term, searchable) >= 0 {
			out = append(out, term)
		}
	}
	return out
}

// maxGram is the longest gram the prefix and ngram fields hold (max_gram
// in the index definition).
const maxGram = 20

// gramTerm cuts every word of term to its first maxGram characters, for the
// prefix and ngram fields, which hold no longer grams: a longer word could
// never match there. It then matches the words that share those first
// characters; the body field still matches the whole word exactly. A word
// is cut generously, as a run of letters, digits, marks and the punctuation
// that may join a word (3.14, l'eau, snake_case), so that no word the
// tokenizer sees stays longer than maxGram.
func gramTerm(term string) string {
	var b strings.Builder
	n := 0
	for _, r := range term {
		if unicode.In(r, unicode.L, unicode.N, unicode.M, unicode.Cf) || strings.ContainsRune("'’.:_,;·", r) {
			n++
			if n > maxGram {
				continue
			}
		} else {
			n = 0
		}
		b.WriteRune(r)
	}
	return b.String()
}

// searchable reports whether the tokenizer indexes r: letters, digits and
// symbols such as emoji, but not punctuation.
func searchable(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.So, r)
}
