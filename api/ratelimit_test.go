package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/apperr"
)

// fakeLimiter answers every request with one decision (or error) and
// records what it was asked.
type fakeLimiter struct {
	mu     sync.Mutex
	answer RateDecision
	err    error
	asked  []string // kind and token of each request
}

func (f *fakeLimiter) Allow(_ context.Context, kind RequestKind, token string) (RateDecision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, kind.String()+" "+token)
	return f.answer, f.err
}

func newLimitedAPI(l *fakeLimiter) *testAPI {
	a := newTestAPI(true)
	a.h = NewHandler(Deps{
		Commands: a.cmd, Queries: a.reads, Search: a.search, RateLimit: l,
		Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), MaxInFlight: 8, MaxReadsInFlight: 8,
	})
	return a
}

// readRoutes is a request to every read route that names an application.
var readRoutes = []string{
	"/applications/" + apiToken,
	"/applications/" + apiToken + "/chats",
	"/applications/" + apiToken + "/chats/1",
	"/applications/" + apiToken + "/chats/1/messages",
	"/applications/" + apiToken + "/chats/1/messages/1",
	"/applications/" + apiToken + "/chats/1/messages/search?q=hel",
	"/chats/1?app_token=" + apiToken,
	"/chats/" + apiToken + "/1/messages",
	"/chats/" + apiToken + "/1/search/hel",
	"/messages/" + apiToken + "/1/1",
}

var (
	limitedPolicy = RatePolicy{Name: "commands", Quota: 20, Window: 2}
	overBudget    = RateDecision{Limited: true, Policy: limitedPolicy, Reset: 1500 * time.Millisecond, RetryAfter: 100 * time.Millisecond}
	withinBudget  = RateDecision{Limited: true, Allowed: true, Policy: limitedPolicy, Remaining: 7, Reset: 300 * time.Millisecond}
)

// TestRateLimitedAnswers: every command on an application and every read
// of one is counted against the application's budget of its kind; past it
// the answer is 429 rate_limited with Retry-After and the budget's fields,
// and the command never reaches the handlers; within it the fields come on
// the answer; with no limit there are none; a limiter that fails refuses
// with its error.
func TestRateLimitedAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		limiter   *fakeLimiter
		status    int // of every counted request; 0: its usual status
		code      string
		policy    string
		remaining string
		retry     string
	}{
		{name: "over budget", limiter: &fakeLimiter{answer: overBudget}, status: 429, code: "rate_limited",
			policy: `"commands";q=20;w=2`, remaining: `"commands";r=0;t=2`, retry: "1"},
		{name: "within budget", limiter: &fakeLimiter{answer: withinBudget},
			policy: `"commands";q=20;w=2`, remaining: `"commands";r=7;t=1`},
		{name: "no limit", limiter: &fakeLimiter{answer: RateDecision{Allowed: true}}},
		{name: "limiter failed", limiter: &fakeLimiter{err: apperr.Unavailable(apperr.DepRedis, nil, "down")}, status: 503, code: "unavailable", retry: "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newLimitedAPI(tc.limiter)
			type req struct{ method, path, body, kind string }
			var reqs []req
			for _, c := range commandRoutes[1:] { // POST /applications names no application
				reqs = append(reqs, req{c.method, c.path, c.body, "commands"})
			}
			for _, p := range readRoutes {
				reqs = append(reqs, req{"GET", p, "", "reads"})
			}
			for _, rq := range reqs {
				w := a.call(rq.method, rq.path, rq.body)
				if tc.status != 0 && (w.Code != tc.status || errorCode(w) != tc.code) {
					t.Errorf("%s %s: %d %s; want %d %s", rq.method, rq.path, w.Code, errorCode(w), tc.status, tc.code)
				}
				if tc.status == 0 && w.Code >= 300 {
					t.Errorf("%s %s: %d %s; want it served", rq.method, rq.path, w.Code, w.Body)
				}
				for name, want := range map[string]string{"RateLimit-Policy": tc.policy, "RateLimit": tc.remaining, "Retry-After": tc.retry} {
					if got := w.Header().Get(name); got != want {
						t.Errorf("%s %s: %s %q, want %q", rq.method, rq.path, name, got, want)
					}
				}
			}
			if tc.status != 0 && len(a.cmd.received()) != 0 {
				t.Errorf("refused commands reached the handlers: %v", a.cmd.received())
			}
			tc.limiter.mu.Lock()
			defer tc.limiter.mu.Unlock()
			if len(tc.limiter.asked) != len(reqs) {
				t.Fatalf("limiter asked %d times for %d requests: %v", len(tc.limiter.asked), len(reqs), tc.limiter.asked)
			}
			for i, rq := range reqs {
				if want := rq.kind + " " + apiToken; tc.limiter.asked[i] != want {
					t.Errorf("%s %s counted as %q, want %q", rq.method, rq.path, tc.limiter.asked[i], want)
				}
			}
		})
	}
}

// TestRateLimitSkipsWhatNamesNoApplication: a create of an application,
// a malformed token and the operational routes are never counted.
func TestRateLimitSkipsWhatNamesNoApplication(t *testing.T) {
	t.Parallel()
	l := &fakeLimiter{answer: overBudget}
	a := newLimitedAPI(l)
	for _, rq := range []struct{ method, path, body string }{
		{"POST", "/applications", `{"name":"acme"}`},
		{"GET", "/applications/not-a-token", ""},
		{"POST", "/chats", `{"name":"x","app_token":7}`},
		{"GET", "/healthz", ""},
		{"GET", "/metrics", ""},
	} {
		w := a.call(rq.method, rq.path, rq.body)
		if w.Code == http.StatusTooManyRequests || strings.Contains(w.Header().Get("RateLimit"), "r=") {
			t.Errorf("%s %s: %d with RateLimit %q; want it not counted", rq.method, rq.path, w.Code, w.Header().Get("RateLimit"))
		}
	}
	if len(l.asked) != 0 {
		t.Errorf("limiter asked for %v", l.asked)
	}
}
