// Package api serves the HTTP API: commands go to the command handlers,
// reads go to the read model.
package api

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/readmodel"
	"github.com/chatsys/chat/redact"
)

// Check is one readiness check: a named dependency and how to ping it. An
// optional dependency is reported but does not make the process unready
// (search being down must not take the rest of the API out of service).
type Check struct {
	Name     string
	Ping     func(ctx context.Context) error
	Optional bool
}

// Commands are the command handlers the API calls; commands.Handlers is
// the one the processes use.
type Commands interface {
	CreateApplication(ctx context.Context, cmd commands.CreateApplication) (commands.Application, error)
	RenameApplication(ctx context.Context, cmd commands.RenameApplication) (commands.Application, error)
	CreateChat(ctx context.Context, cmd commands.CreateChat) (commands.Chat, error)
	RenameChat(ctx context.Context, cmd commands.RenameChat) (commands.Chat, error)
	CreateMessage(ctx context.Context, cmd commands.CreateMessage) (commands.Message, error)
	EditMessage(ctx context.Context, cmd commands.EditMessage) (commands.Message, error)
	DeleteMessage(ctx context.Context, cmd commands.DeleteMessage) (commands.Deleted, error)
}

// Queries are the reads of the read tables the API makes;
// readmodel.Queries is the one the processes use.
type Queries interface {
	Application(ctx context.Context, token string) (readmodel.Application, error)
	Chat(ctx context.Context, token string, number int64) (readmodel.Chat, error)
	Message(ctx context.Context, token string, chat, number int64) (readmodel.Message, error)
	Chats(ctx context.Context, token string, p readmodel.Page) (readmodel.List[readmodel.Chat], error)
	// ChatSpan reads an application's chats by cursor (a chat's number).
	ChatSpan(ctx context.Context, token string, s readmodel.Span) (readmodel.Slice[readmodel.Chat], error)
	Messages(ctx context.Context, token string, chat int64, p readmodel.Page) (readmodel.List[readmodel.Message], error)
	// Changes reads a chat's creates, edits and deletes by cursor.
	Changes(ctx context.Context, token string, chat int64, s readmodel.Span) (readmodel.Changes, error)
}

// Searcher finds a chat's messages; readmodel.SearchQueries is the one
// the processes use. Without one, searches answer 503.
type Searcher interface {
	Search(ctx context.Context, token string, chat int64, q string, p readmodel.Page) (readmodel.List[readmodel.Message], error)
}

// Deps is what the API needs.
type Deps struct {
	Commands    Commands
	Queries     Queries
	Search      Searcher
	Checks      []Check
	Registry    *prometheus.Registry
	Log         *slog.Logger
	MaxInFlight int
	// MaxReadsInFlight bounds reads apart from commands.
	MaxReadsInFlight int
	// BodyTimeout bounds the reading of a request's body, which happens
	// before the request takes a slot; DefaultBodyTimeout when zero.
	BodyTimeout time.Duration
	// Streams configures the message streams and long polls.
	Streams StreamConfig
	// RateLimit (optional) holds each application to its budgets.
	RateLimit RateLimiter
}

type server struct {
	cmd      Commands
	q        Queries
	search   Searcher
	checks   []Check
	log      *slog.Logger
	inFlight chan struct{}
	reads    chan struct{}
	metrics  httpMetrics
	faults   *faultLog
	// bodyTimeout bounds the reading of a request's body.
	bodyTimeout time.Duration
	wake        Wakeups
	streams     streams
	feeds       feeds
	limiter     RateLimiter
}

type httpMetrics struct {
	requests *prometheus.HistogramVec
}

// NewHandler returns the API's HTTP handler.
func NewHandler(d Deps) http.Handler {
	s := &server{
		cmd:         d.Commands,
		q:           d.Queries,
		search:      d.Search,
		checks:      d.Checks,
		log:         d.Log,
		inFlight:    make(chan struct{}, d.MaxInFlight),
		faults:      newFaultLog(d.Log, faultInterval),
		reads:       make(chan struct{}, d.MaxReadsInFlight),
		bodyTimeout: cmp.Or(d.BodyTimeout, DefaultBodyTimeout),
		limiter:     d.RateLimit,
		metrics: httpMetrics{requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chat_http_request_seconds",
			Help:    "HTTP requests by route pattern, method and status, with their latency.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
		}, []string{"route", "method", "status"})},
	}
	d.Registry.MustRegister(s.metrics.requests)
	s.wake = d.Streams.Wakeups
	s.streams = newStreams(d.Streams, d.Registry)
	s.feeds.byChat = map[chatKey]*feed{}

	return s.routes(d.Registry)
}

// faultInterval is how often an ongoing failure is summarised in the log,
// and how long it must be quiet to count as over.
const faultInterval = 10 * time.Second

// limit bounds the commands in flight: past the bound a request is refused
// at once with 503 rather than queued without end.
func (s *server) limit(next http.Handler) http.Handler { return s.admit(s.inFlight, next) }

// limitReads bounds the reads in flight, apart from the commands so that
// neither crowds out the other. Each read holds at most a slice of a page,
// so this also bounds the memory reads take.
func (s *server) limitReads(next http.Handler) http.Handler { return s.admit(s.reads, next) }

// admitStream bounds the streams open at once (StreamConfig.Max).
func (s *server) admitStream(next http.Handler) http.Handler { return s.admit(s.streams.slots, next) }

// admit serves a request while it holds one of slots, and refuses it at
// once when none is free.
func (s *server) admit(slots chan struct{}, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			held := &slot{slots: slots}
			defer held.release(false)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), slotKey{}, held)))
		default:
			s.writeError(w, r, apperr.Overloaded("too many requests in flight; retry shortly"))
		}
	})
}

// slot is a request's place among the slots admit gave it. A stream that
// outlives its request keeps it (keepSlot) and gives it back itself.
type slot struct {
	slots chan struct{}
	mu    sync.Mutex
	kept  bool
	gone  bool
}

type slotKey struct{}

// release gives the slot back, unless a stream kept it (and byKeeper is
// false), once.
func (sl *slot) release(byKeeper bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.gone || sl.kept && !byKeeper {
		return
	}
	sl.gone = true
	<-sl.slots
}

// keepSlot keeps the request's slot past the request, and returns what
// gives it back.
func keepSlot(r *http.Request) func() {
	sl, _ := r.Context().Value(slotKey{}).(*slot)
	if sl == nil {
		return func() {}
	}
	sl.mu.Lock()
	sl.kept = true
	sl.mu.Unlock()
	return func() { sl.release(true) }
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	results := map[string]string{}
	code := http.StatusOK
	for _, c := range s.checks {
		if err := c.Ping(ctx); err != nil {
			// Clients see which dependency is down, not its address or the
			// driver's words; those go to the log.
			results[c.Name] = "unavailable"
			if s.log != nil {
				s.log.Warn("not ready", "dependency", c.Name, "err", redact.Tokens(err.Error()))
			}
			if !c.Optional {
				code = http.StatusServiceUnavailable
			}
		} else {
			results[c.Name] = "ok"
		}
	}
	st := "ok"
	if code != http.StatusOK {
		st = "unavailable"
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, map[string]any{"status": st, "checks": results})
}

// NewOpsHandler serves only /healthz, /readyz and /metrics, for processes
// that run workers without the API.
func NewOpsHandler(checks []Check, reg *prometheus.Registry, log *slog.Logger) http.Handler {
	s := &server{checks: checks, log: log}
	r := chi.NewRouter()
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return r
}
