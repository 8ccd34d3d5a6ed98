package api

import (
	"net/http"

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
	case apperr.KindUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case apperr.KindUnavailable, apperr.KindOverloaded:
		return http.StatusServiceUnavailable
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

// writeError answers with err's status and body. Internal errors are logged
// with their cause and shown to clients only as "internal".
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := apperr.As(err)
	if e == nil {
		e = &apperr.Error{Kind: apperr.KindInternal, Slug: "internal", Message: "internal error", Err: err}
	}
	code := status(e.Kind)
	switch {
	case r.Context().Err() != nil:
		s.log.Info("client went away", "request_id", requestID(r.Context()), "method", r.Method, "path", redact.Tokens(r.URL.Path), "err", redacted(err))
	case code >= 500:
		s.log.Error("request failed", "request_id", requestID(r.Context()), "method", r.Method, "path", redact.Tokens(r.URL.Path), "status", code, "err", redacted(err))
	default:
		s.log.Debug("request refused", "request_id", requestID(r.Context()), "status", code, "err", redacted(err))
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, errorBody{errorDetail{Code: e.Slug, Message: e.Message}})
}

// redacted renders an error for the log with tokens shortened.
func redacted(err error) string { return redact.Tokens(err.Error()) }
