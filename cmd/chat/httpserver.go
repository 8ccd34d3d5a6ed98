package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/api"
	"github.com/chatsys/chat/internal/connlimit"
	"github.com/chatsys/chat/webui"
)

// httpTimeouts bound what a client may take: a slow or stalled client must
// not hold a connection, and its goroutine, without end.
type httpTimeouts struct {
	readHeader, read, write, idle time.Duration
}

var defaultHTTPTimeouts = httpTimeouts{
	readHeader: 5 * time.Second,
	// A body is read within CHAT_HTTP_BODY_TIMEOUT (api.readBody); this is
	// the bound on anything else a request reads.
	read:  30 * time.Second,
	write: 30 * time.Second,
	// An idle connection counts towards its client's bound
	// (CHAT_HTTP_MAX_CONNS_PER_CLIENT) while it lasts.
	idle: time.Minute,
}

// httpServer is the process's HTTP server, with its timeouts.
func (p *process) httpServer() *http.Server {
	return &http.Server{
		Handler:           p.withClient(p.handler),
		ReadHeaderTimeout: p.timeouts.readHeader,
		ReadTimeout:       p.timeouts.read,
		WriteTimeout:      p.timeouts.write,
		IdleTimeout:       p.timeouts.idle,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
}

// withClient serves the web client (package webui) at / and /ui/ of a
// process that serves the API, and the API everywhere else.
func (p *process) withClient(h http.Handler) http.Handler {
	if !p.serve {
		return h
	}
	ui := webui.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if webui.Serves(r) {
			ui.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// limitConns bounds the connections each client holds on ln
// (CHAT_HTTP_MAX_CONNS_PER_CLIENT) and counts those refused.
func (p *process) limitConns(ln net.Listener) net.Listener {
	limited := connlimit.PerClient(ln, p.cfg.MaxConnsPerClient, api.TooManyConnections)
	p.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "chat_http_connections_refused_total",
		Help: "Connections refused because their client held CHAT_HTTP_MAX_CONNS_PER_CLIENT already.",
	}, func() float64 { return float64(limited.Refused()) }))
	return limited
}

// remembered answers a check from its last result for ttl.
func remembered(ping func(context.Context) error, ttl time.Duration) func(context.Context) error {
	var (
		mu   sync.Mutex
		at   time.Time
		last error
	)
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if at.IsZero() || time.Since(at) >= ttl {
			last, at = ping(ctx), time.Now()
		}
		return last
	}
}
