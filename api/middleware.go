package api

import (
	"context"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/redact"
)

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestID takes the client's X-Request-Id (when sane) or makes one, echoes
// it, and makes it the correlation id of the events this request publishes.
// Sane is at most 128 bytes of UTF-8: the events keep it as it was sent.
func (s *server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 || !utf8.ValidString(id) {
			id = uuid.Must(uuid.NewV7()).String()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = events.WithCorrelationID(ctx, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// MaxTargetBytes bounds a request's path and query string as sent. It holds
// the longest search the API takes (1,000 characters of up to 4 bytes of
// UTF-8 each, percent-escaped), and keeps the Link headers that repeat a
// path and its query to a size clients read.
const MaxTargetBytes = 16 << 10

// boundTarget refuses a request whose path and query are over
// MaxTargetBytes with 414, whatever its route.
func (s *server) boundTarget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := len(r.URL.EscapedPath()) + len(r.URL.RawQuery); n > MaxTargetBytes {
			s.writeError(w, r, apperr.TargetTooLong("the path and query string are %d bytes; at most %d are taken", n, MaxTargetBytes))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// unmatchedKey holds a flag the router's 404 and 405 handlers set, so that
// observe labels every request that reached no route alike.
type unmatchedKey struct{}

func markUnmatched(r *http.Request) {
	if p, ok := r.Context().Value(unmatchedKey{}).(*bool); ok {
		*p = true
	}
}

// methodLabels is the closed set of method labels; any other method is
// "other", so that clients cannot mint label values (and series) at will.
var methodLabels = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodHead: http.MethodHead, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodPatch: http.MethodPatch, http.MethodDelete: http.MethodDelete,
	http.MethodOptions: http.MethodOptions, http.MethodConnect: http.MethodConnect, http.MethodTrace: http.MethodTrace,
}

func methodLabel(m string) string {
	if l, ok := methodLabels[m]; ok {
		return l
	}
	return "other"
}

// observe records each request's latency by route pattern, method and
// status. Every label comes from a closed set: a route template or
// "unmatched", a known method or "other", and a status the handlers answer.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		unmatched := false
		r = r.WithContext(context.WithValue(r.Context(), unmatchedKey{}, &unmatched))
		next.ServeHTTP(ww, r)
		route := "unmatched"
		// A request that reached no handler has at most a subrouter's
		// partial pattern (such as /applications/{token}/*).
		if rc := chi.RouteContext(r.Context()); !unmatched && rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		st := ww.Status()
		if st == 0 {
			st = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(st)).Observe(time.Since(start).Seconds())
		s.faults.settle()
	})
}

// recoverer turns a panic into a 500 without the stack reaching the client.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "request_id", requestID(r.Context()), "path", redact.Tokens(r.URL.Path), "panic", v)
				writeJSON(w, http.StatusInternalServerError, errorBody{errorDetail{Code: "internal", Message: "internal error"}})
			}
		}()
		next.ServeHTTP(w, r)
	})
}
