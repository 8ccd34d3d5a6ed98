package projections

import (
	"context"
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/chatsys/chat/apperr"
)

// Limits of a search query.
const (
	MaxQueryLength = 1000
	maxQueryTerms  = 32
	// maxSearchWindow is Elasticsearch's index.max_result_window: from+size
	// beyond it is refused.
	maxSearchWindow = 10000
)

// SearchQueries answers searches: Elasticsearch finds and ranks the
// messages, the read tables supply them, so a hit reads exactly like GET.
type SearchQueries struct {
	es    *elasticsearch.Client
	index *Index
	q     *Queries
}

// NewSearchQueries returns the search queries of a namespace.
func NewSearchQueries(es *elasticsearch.Client, q *Queries, namespace string) *SearchQueries {
	return &SearchQueries{es: es, index: NewIndex(es, namespace), q: q}
}

// SearchBody is the query for a chat's messages matching every term of q:
// each term must match the whole word, a word's prefix or (3 characters or
// more) an infix, in any of the body's fields. Ranked by relevance, then
// number. Terms are only ever match queries: no user input reaches
// query_string or a wildcard.
func SearchBody(token string, chat int64, q string, from, size int64) map[string]any {
	var must []any
	for _, term := range QueryTerms(q) {
		grams := gramTerm(term)
		should := make([]any, 0, 3)
		for _, m := range []struct{ field, query string }{{"body", term}, {"body.prefix", grams}, {"body.ngram", grams}} {
			should = append(should, map[string]any{"match": map[string]any{m.field: map[string]any{"query": m.query, "operator": "and"}}})
		}
		must = append(must, map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}})
	}
	return map[string]any{
		"query": map[string]any{"bool": map[string]any{
			"filter": []any{
				map[string]any{"term": map[string]any{"token": token}},
				map[string]any{"term": map[string]any{"chat_number": chat}},
			},
			"must": must,
		}},
		"sort":             []any{map[string]any{"_score": "desc"}, map[string]any{"number": "asc"}},
		"from":             from,
		"size":             size,
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
// in the index settings).
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

type searchResponse struct {
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

// Search returns a page of a chat's messages that match q.
func (s *SearchQueries) Search(ctx context.Context, token string, chat int64, q string, p Page) (List[Message], error) {
	var l List[Message]
	q = strings.TrimSpace(q)
	switch n := utf8.RuneCountInString(q); {
	case n == 0:
		return l, apperr.Validation("q must not be empty")
	case n > MaxQueryLength:
		return l, apperr.Validation("q has %d characters; at most %d are allowed", n, MaxQueryLength)
	case len(strings.Fields(q)) > maxQueryTerms:
		return l, apperr.Validation("q has more than %d terms", maxQueryTerms)
	case len(QueryTerms(q)) == 0:
		// Without a term the query would match every message of the chat.
		return l, apperr.Validation("q has nothing to search for: it needs a letter, a digit or a symbol, not only punctuation or accents")
	}
	from, size, err := searchWindow(p)
	if err != nil {
		return l, err
	}
	if _, err := s.q.Chat(ctx, token, chat); err != nil {
		return l, err
	}
	body, err := json.Marshal(SearchBody(token, chat, q, from, size))
	if err != nil {
		return l, err
	}
	var out searchResponse
	res, err := s.es.Search(s.es.Search.WithContext(ctx), s.es.Search.WithIndex(s.index.Alias), s.es.Search.WithBody(strings.NewReader(string(body))))
	if err := decode(res, err, "search", &out); err != nil {
		return l, apperr.Unavailable(apperr.DepSearch, err, "search is unavailable; retry later")
	}
	// Total counts every match; Last, which the links page up to, stops
	// at the window.
	l.Total, l.Last = out.Hits.Total.Value, min(out.Hits.Total.Value, maxSearchWindow)
	numbers := make([]int64, len(out.Hits.Hits))
	for i, h := range out.Hits.Hits {
		numbers[i] = h.Source.Number
	}
	l.read = s.q.messagesByNumber(token, chat, numbers)
	return l, nil
}

// searchWindow returns where a page of results starts and how many it
// holds. A page must start within the window; the page that straddles its
// end is cut there, so that every result in the window can be reached.
func searchWindow(p Page) (from, size int64, err error) {
	from = (p.Number - 1) * p.PerPage
	if from >= maxSearchWindow {
		return 0, 0, apperr.Validation("search results can be paged through their first %d only: page %d of %d per page starts beyond them", maxSearchWindow, p.Number, p.PerPage)
	}
	return from, min(p.PerPage, maxSearchWindow-from), nil
}

// messagesByNumber reads the given messages of a chat, in the given order,
// a slice at a time; a number the read side does not have (yet) is left out.
func (q *Queries) messagesByNumber(token string, chat int64, numbers []int64) func(context.Context, func(Message) error) error {
	return func(ctx context.Context, yield func(Message) error) error {
		for rest := numbers; len(rest) > 0; {
			slice := rest[:min(len(rest), messageSlice)]
			rest = rest[len(slice):]
			found, err := q.someMessages(ctx, token, chat, slice)
			if err != nil {
				return err
			}
			for _, n := range slice {
				if m, ok := found[n]; ok {
					if err := yield(m); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
}

// someMessages reads the given messages of a chat.
func (q *Queries) someMessages(ctx context.Context, token string, chat int64, numbers []int64) (map[int64]Message, error) {
	args := []any{token, chat}
	for _, n := range numbers {
		args = append(args, n)
	}
	rows, err := q.db.QueryContext(ctx, "SELECT number, body, created_at, updated_at FROM "+q.messages+
		" WHERE token = ? AND chat_number = ? AND number IN (?"+strings.Repeat(",?", len(numbers)-1)+") AND created_at IS NOT NULL", args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	found := make(map[int64]Message, len(numbers))
	for rows.Next() {
		m := Message{ChatNumber: chat}
		if err := rows.Scan(&m.Number, &m.Body, &m.CreatedAt, &m.UpdatedAt); err != nil {
			return nil, unavailable(err)
		}
		found[m.Number] = m
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return found, nil
}
