package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/redact"
)

// status is the one place where error kinds become HTTP statuses.
func status(k apperr.Kind) int {
	switch k {
	case apperr.KindNotFound:
		return http.StatusNotFound
	case apperr.KindInvalid:
		return http.StatusBadRequest
	case apperr.KindValidation:
		return http.StatusUnprocessableEntity
	case apperr.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case apperr.KindTargetTooLong:
		return http.StatusRequestURITooLong
	case apperr.KindTimeout:
		return http.StatusRequestTimeout
	case apperr.KindUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case apperr.KindUnavailable, apperr.KindOverloaded:
		return http.StatusServiceUnavailable
	case apperr.KindConflict:
		return http.StatusConflict
	case apperr.KindLimited:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handler is an HTTP handler that returns its error instead of answering
// it, so that it reads top to bottom; answer serves it. It returns an
// error only while it has written nothing: past that it ends its answer
// itself (see writeItems).
type handler func(w http.ResponseWriter, r *http.Request) error

// answer serves h, answering the error it returns with writeError: the one
// place a handler's error becomes its answer.
func (s *server) answer(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// writeError answers with err's status and body. Failures are logged by kind
// through the fault log (one line when a kind starts failing, summaries while
// it goes on); internal errors are shown to clients only as "internal".
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := apperr.As(err)
	if e == nil {
		e = &apperr.Error{Kind: apperr.KindInternal, Slug: "internal", Message: "internal error", Err: err}
	}
	code := status(e.Kind)
	attrs := []any{"request_id", requestID(r.Context()), "method", r.Method, "path", redact.Tokens(r.URL.Path), "status", code}
	switch {
	case r.Context().Err() != nil:
		s.faults.failed("client_gone", slog.LevelInfo, "a client went away before its answer", redacted(err), attrs...)
	case e.Kind == apperr.KindUnavailable:
		dep := e.Dependency
		if dep == "" {
			dep = "unknown"
		}
		s.faults.failed("unavailable:"+dep, slog.LevelError, "dependency unavailable", redacted(err), append(attrs, "dependency", dep)...)
	case e.Kind == apperr.KindOverloaded && e.Slug == "backlog_full":
		s.faults.failed("backlog_full", slog.LevelWarn, "commands refused: the event log's backlog is full", redacted(err), attrs...)
	case e.Kind == apperr.KindOverloaded:
		s.faults.failed("overloaded", slog.LevelWarn, "requests refused: too many in flight", redacted(err), attrs...)
	case code >= 500:
		s.faults.failed("internal", slog.LevelError, "request failed", redacted(err), attrs...)
	default:
		s.log.Debug("request refused", "request_id", requestID(r.Context()), "status", code, "err", redacted(err))
	}
	if e.RetryAfter > 0 || code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter(e.RetryAfter))
	}
	writeJSON(w, code, errorBody{errorDetail{Code: e.Slug, Message: e.Message}})
}

// TooManyConnections is the whole HTTP answer to a connection refused
// because its client holds as many as it may (internal/connlimit): 503
// overloaded with Retry-After, and the connection closed.
func TooManyConnections() []byte {
	body, _ := json.Marshal(errorBody{errorDetail{Code: "overloaded", Message: "too many connections from this client; reuse one, or retry shortly"}})
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\n"+
		"Content-Type: application/json; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"+
		"X-Request-Id: %s\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s\n",
		uuid.Must(uuid.NewV7()), len(body)+1, body)
}

// retryAfter renders a wait in whole seconds, at least one.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// redacted renders an error for the log with tokens shortened.
func redacted(err error) string { return redact.Tokens(err.Error()) }
