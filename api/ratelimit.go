package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/ratelimit"
)

// RateLimiter draws a request from its application's budget;
// ratelimit.Limiter is the one the processes use. Without one, nothing is
// limited. An error is answered as it is (the limiter lets reads through
// when Redis is down, and refuses commands as unavailable).
type RateLimiter interface {
	Allow(ctx context.Context, kind ratelimit.Kind, token string) (ratelimit.Decision, error)
}

// rateLimit counts a request of kind against its application's budget, before
// it takes one of the slots: a refused request costs one Redis script and
// never holds a slot another application's request could use. While a
// limit applies, every answer states it in the RateLimit-Policy and
// RateLimit fields (draft-ietf-httpapi-ratelimit-headers); past it, the
// answer is 429 rate_limited with Retry-After. A request that names no
// application, or a token that cannot be one, is not counted: it creates an
// application or is answered 404.
func (s *server) rateLimit(kind ratelimit.Kind) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if s.limiter == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := requestToken(r)
			if !commands.ValidToken(token) {
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
func setRateLimitFields(h http.Header, d ratelimit.Decision) {
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
