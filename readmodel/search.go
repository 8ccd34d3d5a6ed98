package readmodel

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/mysqldb/stmt"
	"github.com/chatsys/chat/searchindex"
)

// Limits of a search query.
const (
	MaxQueryLength = 1000
	maxQueryTerms  = 32
)

// SearchQueries answers searches: Elasticsearch finds and ranks the
// messages, the read tables supply them, so a hit reads exactly like GET.
type SearchQueries struct {
	index *searchindex.Index
	q     *Queries
}

// NewSearchQueries returns the search queries of a namespace.
func NewSearchQueries(es *searchindex.Client, q *Queries, namespace string) *SearchQueries {
	return &SearchQueries{index: searchindex.NewIndex(es, namespace), q: q}
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
	case len(searchindex.QueryTerms(q)) == 0:
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
	hits, err := s.index.Search(ctx, searchindex.Query{Token: token, Chat: chat, Q: q, From: from, Size: size})
	if err != nil {
		return l, apperr.Unavailable(apperr.DepSearch, err, "search is unavailable; retry later")
	}
	// Total counts every match; Last, which the links page up to, stops
	// at the window.
	l.Total, l.Last = hits.Total, min(hits.Total, searchindex.MaxResultWindow)
	l.read = s.q.messagesByNumber(token, chat, hits.Numbers)
	return l, nil
}

// searchWindow returns where a page of results starts and how many it
// holds. A page must start within the window; the page that straddles its
// end is cut there, so that every result in the window can be reached.
func searchWindow(p Page) (from, size int64, err error) {
	from = (p.Number - 1) * p.PerPage
	if from >= searchindex.MaxResultWindow {
		return 0, 0, apperr.Validation("search results can be paged through their first %d only: page %d of %d per page starts beyond them", searchindex.MaxResultWindow, p.Number, p.PerPage)
	}
	return from, min(p.PerPage, searchindex.MaxResultWindow-from), nil
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
	args := append([]any{token, chat}, stmt.Args(numbers)...)
	rows, err := q.db.QueryContext(ctx, "SELECT number, body, created_at, updated_at FROM "+q.messages+
		" WHERE token = ? AND chat_number = ? AND number IN ("+stmt.Placeholders(len(numbers))+") AND created_at IS NOT NULL", args...)
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
