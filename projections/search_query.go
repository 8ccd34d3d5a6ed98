package projections

import (
	"context"
	"encoding/json"
	"strings"
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
	for _, term := range strings.Fields(FoldAccents(q)) {
		should := make([]any, 0, 3)
		for _, f := range []string{"body", "body.prefix", "body.ngram"} {
			should = append(should, map[string]any{"match": map[string]any{f: map[string]any{"query": term, "operator": "and"}}})
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
	}
	from := (p.Number - 1) * p.PerPage
	if from+p.PerPage > maxSearchWindow {
		return l, apperr.Validation("search results can be paged through their first %d only", maxSearchWindow)
	}
	if _, err := s.q.Chat(ctx, token, chat); err != nil {
		return l, err
	}
	body, err := json.Marshal(SearchBody(token, chat, q, from, p.PerPage))
	if err != nil {
		return l, err
	}
	var out searchResponse
	res, err := s.es.Search(s.es.Search.WithContext(ctx), s.es.Search.WithIndex(s.index.Alias), s.es.Search.WithBody(strings.NewReader(string(body))))
	if err := decode(res, err, "search", &out); err != nil {
		return l, apperr.Unavailable(err, "search is unavailable; retry later")
	}
	l.Total, l.Last = out.Hits.Total.Value, out.Hits.Total.Value
	numbers := make([]int64, len(out.Hits.Hits))
	for i, h := range out.Hits.Hits {
		numbers[i] = h.Source.Number
	}
	l.read = s.q.messagesByNumber(token, chat, numbers)
	return l, nil
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
