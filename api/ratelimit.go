package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/apptoken"
)

// RateLimiter draws a request from its application's budget; the
// processes wire in ratelimit.Limiter, translated to these types
// (cmd/chat/ports.go). Without one, nothing is limited. An error is
// answered as it is (the limiter lets reads through when Redis is down,
// and refuses commands as unavailable).
type RateLimiter interface {
	Allow(ctx context.Context, kind RequestKind, token string) (RateDecision, error)
}

// RequestKind is a kind of request, each with a budget of its own.
type RequestKind int

const (
	// CommandRequest is a request that changes something.
	CommandRequest RequestKind = iota
	// ReadRequest is a read, a search, a long poll or a stream.
	ReadRequest
)

// String is the kind's name: "commands" or "reads".
func (k RequestKind) String() string {
	if k == CommandRequest {
		return "commands"
	}
	return "reads"
}

// RatePolicy is a budget as the RateLimit-Policy field states it: Quota
// requests per Window seconds, the bucket's size and the time it takes to
// fill.
type RatePolicy struct {
	Name   string
	Quota  int64
	Window int64
}

// RateDecision is what the limiter says of one request.
type RateDecision struct {
	// Limited is true when a limit applies: the answer then states the
	// policy and what is left of it.
	Limited bool
	Allowed bool
	Policy  RatePolicy
	// Remaining is the requests left in the budget.
	Remaining int64
	// Reset is how long until the budget is whole again.
	Reset time.Duration
	// RetryAfter is how long a refused request should wait.
	RetryAfter time.Duration
}

// rateLimit counts a request of kind against its application's budget, before
// it takes one of the slots: a refused request costs one Redis script and
// never holds a slot another application's request could use. While a
// limit applies, every answer states it in the RateLimit-Policy and
// RateLimit fields (draft-ietf-httpapi-ratelimit-headers); past it, the
// answer is 429 rate_limited with Retry-After. A request that names no
// application, or a token that cannot be one, is not counted: it creates an
// application or is answered 404.
func (s *server) rateLimit(kind RequestKind) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if s.limiter == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := requestToken(r)
			if !apptoken.Valid(token) {
				next.ServeHTTP(w, r)
				return
			}
			d, err := s.limiter.Allow(r.Context(), kind, token)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			if d.Limited {
				setRateLimitFields(w.Header(), d)
			}
			if !d.Allowed {
				s.writeError(w, r, apperr.RateLimited(d.RetryAfter,
					"this application is over its %s rate limit (%d per %d s); retry after Retry-After seconds", d.Policy.Name, d.Policy.Quota, d.Policy.Window))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// setRateLimitFields states the budget in the structured-field form of the
// draft: RateLimit-Policy: "commands";q=100;w=1 (q requests per w seconds,
// the bucket's size and how long it takes to fill) and RateLimit:
// "commands";r=42;t=1 (r left, t seconds until the budget is whole again).
func setRateLimitFields(h http.Header, d RateDecision) {
	name := strconv.Quote(d.Policy.Name)
	h.Set("RateLimit-Policy", name+";q="+strconv.FormatInt(d.Policy.Quota, 10)+";w="+strconv.FormatInt(d.Policy.Window, 10))
	h.Set("RateLimit", name+";r="+strconv.FormatInt(d.Remaining, 10)+";t="+strconv.FormatInt(ceilSeconds(d.Reset), 10))
}

func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// requestToken is the application a request addresses: the path's token,
// else the seed routes' app_token, in the query string or the JSON body
// (already read by readBody). "" when there is none.
func requestToken(r *http.Request) string {
	if t := chi.URLParam(r, "token"); t != "" {
		return t
	}
	if t := r.URL.Query().Get("app_token"); t != "" {
		return t
	}
	body, ok := bodyOf(r)
	if !ok || len(body) == 0 {
		return ""
	}
	// A body that is not this shape is refused by its handler, which
	// decodes it strictly; here it only names no application.
	var b struct {
		AppToken string `json:"app_token"`
	}
	_ = json.Unmarshal(body, &b)
	return b.AppToken
}
