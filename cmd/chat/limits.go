package main

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/ratelimit"
)

// newLimiter holds each application to the configured budgets, or its own.
func newLimiter(store *ratelimit.Store, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) *ratelimit.Limiter {
	return ratelimit.New(store, ratelimit.Defaults{
		Commands: int64(cfg.RateLimitCommands),
		Reads:    int64(cfg.RateLimitReads),
		Burst:    int64(cfg.RateLimitBurst),
	}, log, reg)
}
