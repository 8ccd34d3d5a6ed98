package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/chatsys/chat/apperr"
)

// searchTimeout bounds a search, so a hanging Elasticsearch cannot hold
// requests.
const searchTimeout = 5 * time.Second

// queryTerms reads the search's terms from the query string (q), which the
// links repeat.
func queryTerms(r *http.Request) (string, url.Values) {
	q := r.URL.Query().Get("q")
	return q, url.Values{"q": {q}}
}

// searchMessages answers one page of a search of the path's chat for the
// terms that terms reads, with the route's own query parameters that the
// links repeat.
func (s *server) searchMessages(terms func(*http.Request) (string, url.Values)) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		q, keep := terms(r)
		token, chat, p, err := chatPage(r)
		if err != nil {
			return err
		}
		if s.search == nil {
			return apperr.Unavailable(apperr.DepSearch, nil, "search is not configured")
		}
		ctx, cancel := context.WithTimeout(r.Context(), searchTimeout)
		defer cancel()
		list, err := s.search.Search(ctx, token, chat, q, p)
		if err != nil {
			return err
		}
		return s.writeMessages(w, r, p, keep, list)
	}
}
