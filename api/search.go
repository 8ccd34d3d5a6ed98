package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatsys/chat/apperr"
)

// searchTimeout bounds a search, so a hanging Elasticsearch cannot hold
// requests.
const searchTimeout = 5 * time.Second

func (s *server) searchMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	s.doSearch(w, r, q, url.Values{"q": {q}})
}

// seedSearch serves GET /chats/{app_token}/{number}/search/{q}.
func (s *server) seedSearch(w http.ResponseWriter, r *http.Request) {
	q := chi.URLParam(r, "q")
	// The router matched on the raw path when it holds escapes (such as
	// %2F) that decoding would change; only then is q still escaped.
	if r.URL.RawPath != "" {
		if unescaped, err := url.PathUnescape(q); err == nil {
			q = unescaped
		}
	}
	s.doSearch(w, r, q, nil)
}

// doSearch answers one page of a search for q; keep are the route's own
// query parameters (the terms, for the canonical route), which its links
// repeat.
func (s *server) doSearch(w http.ResponseWriter, r *http.Request, q string, keep url.Values) {
	token, chat, p, err := chatPage(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.search == nil {
		s.writeError(w, r, apperr.Unavailable(apperr.DepSearch, nil, "search is not configured"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), searchTimeout)
	defer cancel()
	list, err := s.search.Search(ctx, token, chat, q, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeMessages(w, r, p, keep, list)
}
