package api

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/chatsys/chat/apperr"
)

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 1 << 20

// DefaultBodyTimeout bounds the reading of a request body when Deps sets
// no bound of its own.
const DefaultBodyTimeout = 5 * time.Second

type bodyKey struct{}

// bodyOf returns the body readBody read for r.
func bodyOf(r *http.Request) ([]byte, bool) {
	b, ok := r.Context().Value(bodyKey{}).([]byte)
	return b, ok
}

// readBody reads a request's body whole, within the body timeout, before
// the request goes on to take one of the slots: a slot is for work, and a
// client that sends its body slowly, or never, must not hold one. What is
// refused here is refused before anything is waited for: a body that is
// not JSON (415) or that says it is over MaxBodyBytes (413).
func (s *server) readBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := s.read(w, r)
		if err != nil {
			if e := apperr.As(err); e != nil && (e.Kind == apperr.KindTimeout || e.Kind == apperr.KindTooLarge) {
				// What is left of the body is not read: the connection
				// cannot serve another request.
				w.Header().Set("Connection", "close")
			}
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyKey{}, body)))
	})
}

// read reads r's body, at most MaxBodyBytes, within s.bodyTimeout.
func (s *server) read(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return nil, apperr.UnsupportedMedia("the body must be JSON (Content-Type: application/json)")
		}
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, apperr.TooLarge("the request body is over %d bytes", MaxBodyBytes)
	}
	if r.ContentLength == 0 {
		return nil, nil
	}
	rc := http.NewResponseController(w)
	// Errors mean the writer is not a connection's (a test's recorder),
	// which has no deadline to set.
	_ = rc.SetReadDeadline(time.Now().Add(s.bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err == nil {
		// The body is in: the request's work is bounded by timeouts of its
		// own, and a deadline left behind would cut it short.
		_ = rc.SetReadDeadline(time.Time{})
		return body, nil
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, apperr.TooLarge("the request body is over %d bytes", MaxBodyBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, apperr.Timeout("the request body did not arrive within %s", s.bodyTimeout)
	}
	return nil, apperr.InvalidJSON("the request body could not be read")
}

// noBody serves a route that takes no body without waiting for one: a body
// that has not arrived yet is not waited for, before the answer or after
// it (the connection is then closed).
func (s *server) noBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		}
		next.ServeHTTP(w, r)
	})
}

// seedChatBody reads the body of the seed's GET of a chat, which carries
// the token there when the query string does not.
func (s *server) seedChatBody(next http.Handler) http.Handler {
	withBody, without := s.readBody(next), s.noBody(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("app_token") != "" {
			without.ServeHTTP(w, r)
			return
		}
		withBody.ServeHTTP(w, r)
	})
}
