package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/apperr"
)

// Defaults are the limits of an application without an override.
type Defaults struct {
	// Commands and Reads are requests per second; 0 is no limit.
	Commands, Reads int64
	// Burst is how many seconds of its rate an idle budget holds (at least 1).
	Burst int64
}

func (d Defaults) rate(k Kind) int64 {
	if k == Commands {
		return d.Commands
	}
	return d.Reads
}

// Policy is a budget as the RateLimit-Policy header field states it: Quota
// requests per Window seconds, the bucket's size and the time it takes to
// fill.
type Policy struct {
	Name   string
	Quota  int64
	Window int64
}

// Decision is what the limiter says of one request.
type Decision struct {
	// Limited is true when a limit applies: the answer then states the
	// policy and what is left of it.
	Limited bool
	Allowed bool
	Policy  Policy
	// Remaining is the requests left in the budget.
	Remaining int64
	// Reset is how long until the budget is whole again.
	Reset time.Duration
	// RetryAfter is how long a refused request should wait.
	RetryAfter time.Duration
}

// Limiter decides whether an application's request is within its budget.
type Limiter struct {
	store    *Store
	defaults Defaults
	log      *slog.Logger
	counted  *prometheus.CounterVec
	free     unlimited
}

// unlimitedFor is how long the limiter remembers that no limit applies to
// an application's requests of a kind: while limits are off by default,
// that spares every request a Redis round trip, and an override set by an
// operator applies within it.
const unlimitedFor = time.Second

// unlimitedMax bounds what the limiter remembers; past it, it forgets all.
const unlimitedMax = 100_000

// unlimited remembers, per kind and application, until when no limit
// applies.
type unlimited struct {
	mu    sync.Mutex
	until map[budget]time.Time
}

type budget struct {
	kind  Kind
	token string
}

func (u *unlimited) holds(b budget, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return now.Before(u.until[b])
}

func (u *unlimited) remember(b budget, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.until == nil || len(u.until) >= unlimitedMax {
		u.until = map[budget]time.Time{}
	}
	u.until[b] = now.Add(unlimitedFor)
}

// New returns a limiter drawing on store with defaults, counting its
// decisions in reg.
func New(store *Store, defaults Defaults, log *slog.Logger, reg prometheus.Registerer) *Limiter {
	counted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chat_ratelimit_requests_total",
		Help: "Requests the rate limiter decided on, by kind (commands, reads) and outcome: allowed, refused (429), unlimited (no limit applies), failed (Redis did not answer: reads are let through, commands refused with 503).",
	}, []string{"kind", "outcome"})
	reg.MustRegister(counted)
	defaults.Burst = max(defaults.Burst, 1)
	return &Limiter{store: store, defaults: defaults, log: log, counted: counted}
}

// Allow draws one request of kind from token's budget. It refuses nothing
// itself: a request over budget gets Allowed false. When Redis does not
// answer, a read is let through (limits fail open: reads do not need Redis)
// and a command gets an unavailable error, as its numbering would.
func (l *Limiter) Allow(ctx context.Context, kind Kind, token string) (Decision, error) {
	b := budget{kind, token}
	if l.defaults.rate(kind) == 0 && l.free.holds(b, time.Now()) {
		l.counted.WithLabelValues(kind.String(), "unlimited").Inc()
		return Decision{Allowed: true}, nil
	}
	t, err := l.store.Take(ctx, kind, token, l.defaults.rate(kind), l.defaults.Burst)
	if err != nil {
		l.counted.WithLabelValues(kind.String(), "failed").Inc()
		if kind == Reads {
			l.log.Debug("rate limiter unavailable; read let through", "err", err)
			return Decision{Allowed: true}, nil
		}
		return Decision{}, apperr.Unavailable(apperr.DepRedis, err, "the rate limiter is unavailable; retry later")
	}
	if !t.Limited {
		l.free.remember(b, time.Now())
		l.counted.WithLabelValues(kind.String(), "unlimited").Inc()
		return Decision{Allowed: true}, nil
	}
	outcome := "allowed"
	if !t.Allowed {
		outcome = "refused"
	}
	l.counted.WithLabelValues(kind.String(), outcome).Inc()
	return Decision{
		Limited:    true,
		Allowed:    t.Allowed,
		Policy:     Policy{Name: kind.String(), Quota: t.Rate * t.Burst, Window: t.Burst},
		Remaining:  t.Remaining,
		Reset:      t.Full,
		RetryAfter: t.Wait,
	}, nil
}
