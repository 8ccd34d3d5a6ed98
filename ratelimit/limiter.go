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
	memo     memo
}

// unlimitedFor is how long the limiter remembers that no limit applies to
// an application's requests of a kind: while limits are off by default,
// that spares every request a Redis round trip, and an override set by an
// operator applies within it.
const unlimitedFor = time.Second

// memoMax bounds what the limiter remembers; past it, it forgets all.
const memoMax = 100_000

type budget struct {
	kind  Kind
	token string
}

// memo is what the limiter remembers of budgets between Redis answers:
// until when no limit applies to one, and until when one is empty. An
// empty bucket gets no request in before its wait is over, whichever
// process asks (none adds to it), so a refusal is answered again from
// memory until then: a client that ignores its 429s costs Redis one script
// per wait, not one per request.
type memo struct {
	mu   sync.Mutex
	free map[budget]time.Time
	shut map[budget]refusal
}

// refusal is a refusal and when it was made.
type refusal struct {
	d  Decision
	at time.Time
}

func (m *memo) unlimited(b budget, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return now.Before(m.free[b])
}

func (m *memo) rememberUnlimited(b budget, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.free == nil || len(m.free) >= memoMax {
		m.free = map[budget]time.Time{}
	}
	m.free[b] = now.Add(unlimitedFor)
}

// refused returns the remembered refusal of b as it stands at now, if its
// wait is not over.
func (m *memo) refused(b budget, now time.Time) (Decision, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.shut[b]
	if !ok {
		return Decision{}, false
	}
	passed := now.Sub(r.at)
	if passed >= r.d.RetryAfter {
		delete(m.shut, b)
		return Decision{}, false
	}
	d := r.d
	d.RetryAfter -= passed
	d.Reset = max(d.Reset-passed, d.RetryAfter)
	return d, true
}

func (m *memo) rememberRefusal(b budget, d Decision, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shut == nil || len(m.shut) >= memoMax {
		m.shut = map[budget]refusal{}
	}
	m.shut[b] = refusal{d, now}
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
	b, now := budget{kind, token}, time.Now()
	if l.defaults.rate(kind) == 0 && l.memo.unlimited(b, now) {
		l.counted.WithLabelValues(kind.String(), "unlimited").Inc()
		return Decision{Allowed: true}, nil
	}
	if d, ok := l.memo.refused(b, now); ok {
		l.counted.WithLabelValues(kind.String(), "refused").Inc()
		return d, nil
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
		l.memo.rememberUnlimited(b, now)
		l.counted.WithLabelValues(kind.String(), "unlimited").Inc()
		return Decision{Allowed: true}, nil
	}
	outcome := "allowed"
	if !t.Allowed {
		outcome = "refused"
	}
	l.counted.WithLabelValues(kind.String(), outcome).Inc()
	d := Decision{
		Limited:    true,
		Allowed:    t.Allowed,
		Policy:     Policy{Name: kind.String(), Quota: t.Rate * t.Burst, Window: t.Burst},
		Remaining:  t.Remaining,
		Reset:      t.Full,
		RetryAfter: t.Wait,
	}
	if !t.Allowed {
		l.memo.rememberRefusal(b, d, now)
	}
	return d, nil
}
