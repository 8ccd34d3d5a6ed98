// Package apperr holds the errors that cross package boundaries: each carries
// a kind (what went wrong, for status mapping) and a stable slug (what clients
// see in the error body).
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for the one place that maps errors to HTTP statuses.
type Kind int

const (
	KindInternal         Kind = iota // a bug or an unexpected failure
	KindNotFound                     // the addressed resource does not exist
	KindInvalid                      // the input is malformed (cannot be parsed)
	KindValidation                   // the input parses but breaks a rule
	KindTooLarge                     // the request body is over the limit
	KindUnavailable                  // a dependency is down; retrying later may work
	KindOverloaded                   // too many requests in flight; retry soon
	KindUnsupportedMedia             // the body is not JSON
	KindConflict                     // the request clashes with one in flight; retry soon
	KindLimited                      // the client holds more of something than it may; retry later
	KindTargetTooLong                // the request's path and query are over the limit
	KindTimeout                      // the client did not send its request in time
)

// Error is an error with a kind and a stable slug. Message is safe to show to
// clients; Err (optional) is the cause, kept for logs and errors.Is.
type Error struct {
	Kind    Kind
	Slug    string
	Message string
	Err     error
	// Dependency names what is down, for an unavailable error: the API logs
	// outages by dependency rather than a line per refused request.
	Dependency string
	// RetryAfter, when set, is how long the client should wait before
	// retrying.
	RetryAfter time.Duration
}

// The dependencies an unavailable error can name.
const (
	DepBroker   = "rabbitmq"
	DepRedis    = "redis"
	DepDatabase = "mysql"
	DepSearch   = "elasticsearch"
)

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Slug + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Slug + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// NotFound reports that the named resource does not exist.
func NotFound(format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Slug: "not_found", Message: fmt.Sprintf(format, args...)}
}

// MessageDeleted is the answer about a message that was deleted: a code
// of its own, so that a client tells it from a number never used.
func MessageDeleted() *Error {
	return &Error{Kind: KindNotFound, Slug: "message_deleted", Message: "message deleted"}
}

// InvalidJSON reports a body that is not the JSON the endpoint takes.
func InvalidJSON(format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Slug: "invalid_json", Message: fmt.Sprintf(format, args...)}
}

// InvalidCursor reports a cursor (after, before, Last-Event-ID) or wait that
// does not parse.
func InvalidCursor(format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Slug: "invalid_cursor", Message: fmt.Sprintf(format, args...)}
}

// Validation reports input that parses but breaks a rule.
func Validation(format string, args ...any) *Error {
	return &Error{Kind: KindValidation, Slug: "validation_failed", Message: fmt.Sprintf(format, args...)}
}

// Unavailable reports that dependency is down; cause is kept for the logs.
func Unavailable(dependency string, cause error, format string, args ...any) *Error {
	return &Error{Kind: KindUnavailable, Slug: "unavailable", Message: fmt.Sprintf(format, args...), Err: cause, Dependency: dependency}
}

// Overloaded reports that the service refuses work to protect itself.
func Overloaded(format string, args ...any) *Error {
	return &Error{Kind: KindOverloaded, Slug: "overloaded", Message: fmt.Sprintf(format, args...)}
}

// Backlogged reports that the event log is too far behind to take more
// now: the client should retry after retryAfter.
func Backlogged(retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Kind: KindOverloaded, Slug: "backlog_full", Message: fmt.Sprintf(format, args...), RetryAfter: retryAfter}
}

// TooLarge reports a request body over the limit.
func TooLarge(format string, args ...any) *Error {
	return &Error{Kind: KindTooLarge, Slug: "payload_too_large", Message: fmt.Sprintf(format, args...)}
}

// UnsupportedMedia reports a body that is not of the media type expected.
func UnsupportedMedia(format string, args ...any) *Error {
	return &Error{Kind: KindUnsupportedMedia, Slug: "unsupported_media_type", Message: fmt.Sprintf(format, args...)}
}

// TargetTooLong reports a request whose path and query string are over the
// limit.
func TargetTooLong(format string, args ...any) *Error {
	return &Error{Kind: KindTargetTooLong, Slug: "uri_too_long", Message: fmt.Sprintf(format, args...)}
}

// Timeout reports a request whose client did not send it in time.
func Timeout(format string, args ...any) *Error {
	return &Error{Kind: KindTimeout, Slug: "request_timeout", Message: fmt.Sprintf(format, args...)}
}

// InvalidIdempotencyKey reports an Idempotency-Key header that is not a key.
func InvalidIdempotencyKey(format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Slug: "invalid_idempotency_key", Message: fmt.Sprintf(format, args...)}
}

// KeyReused reports an idempotency key sent again with another request.
func KeyReused(format string, args ...any) *Error {
	return &Error{Kind: KindValidation, Slug: "idempotency_key_reused", Message: fmt.Sprintf(format, args...)}
}

// InFlight reports a retry that arrived while the request it repeats is
// still being processed.
func InFlight(retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Slug: "idempotency_key_in_flight", Message: fmt.Sprintf(format, args...), RetryAfter: retryAfter}
}

// KeyLimit reports that the idempotency keys in use are at their limit.
func KeyLimit(retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Kind: KindLimited, Slug: "idempotency_key_limit", Message: fmt.Sprintf(format, args...), RetryAfter: retryAfter}
}

// RateLimited reports a request over its application's rate limit.
func RateLimited(retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Kind: KindLimited, Slug: "rate_limited", Message: fmt.Sprintf(format, args...), RetryAfter: retryAfter}
}

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
