package ratelimit_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/ratelimit"
	"github.com/chatsys/chat/rediscluster"
)

// TestLimiterDecisions: the policy a decision states, and what happens
// when Redis does not answer: reads go through unlimited, commands are 503.
func TestLimiterDecisions(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	ctx := context.Background()
	rdb := testenv.Redis(t, cfg)
	const token = "abcdefghijklmnopqrstuvwxyz"
	if err := numbering.New(rdb, cfg.Namespace).ApplicationConfirmed(ctx, token); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	l := ratelimit.New(ratelimit.NewStore(rdb, cfg.Namespace), ratelimit.Defaults{Commands: 3, Reads: 0, Burst: 2}, slog.New(slog.DiscardHandler), reg)
	for i := 0; i < 7; i++ {
		d, err := l.Allow(ctx, ratelimit.Commands, token)
		if err != nil || !d.Limited || d.Policy != (ratelimit.Policy{Name: "commands", Quota: 6, Window: 2}) {
			t.Fatalf("command %d: %+v, %v", i, d, err)
		}
		if want := i < 6; d.Allowed != want || (!want && d.RetryAfter <= 0) {
			t.Fatalf("command %d: allowed %v (retry after %s), want %v", i, d.Allowed, d.RetryAfter, want)
		}
	}
	if d, err := l.Allow(ctx, ratelimit.Reads, token); err != nil || d.Limited || !d.Allowed {
		t.Fatalf("a read without a limit: %+v, %v", d, err)
	}

	down, err := rediscluster.Open("redis://127.0.0.1:1/0", rediscluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	downReg := prometheus.NewRegistry()
	l = ratelimit.New(ratelimit.NewStore(down, cfg.Namespace), ratelimit.Defaults{Commands: 3, Reads: 3, Burst: 1}, slog.New(slog.DiscardHandler), downReg)
	if d, err := l.Allow(ctx, ratelimit.Reads, token); err != nil || d.Limited || !d.Allowed {
		t.Errorf("a read with Redis down: %+v, %v; want let through", d, err)
	}
	_, err = l.Allow(ctx, ratelimit.Commands, token)
	if e := apperr.As(err); e == nil || e.Kind != apperr.KindUnavailable {
		t.Errorf("a command with Redis down: %v; want unavailable", err)
	}
	for _, c := range []struct {
		reg           *prometheus.Registry
		kind, outcome string
		want          float64
	}{
		{reg, "commands", "allowed", 6}, {reg, "commands", "refused", 1}, {reg, "reads", "unlimited", 1},
		{downReg, "commands", "failed", 1}, {downReg, "reads", "failed", 1},
	} {
		if got := counted(t, c.reg, c.kind, c.outcome); got != c.want {
			t.Errorf("chat_ratelimit_requests_total{kind=%q,outcome=%q} = %v, want %v", c.kind, c.outcome, got, c.want)
		}
	}
}

// counted reads one series of chat_ratelimit_requests_total.
func counted(t *testing.T, reg *prometheus.Registry, kind, outcome string) float64 {
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "chat_ratelimit_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestRefusalsUntilTheWaitIsOver: once a budget is empty, the requests
// that come before its wait is over are refused, each told the wait that
// is left, and the first one after it is let through, on this limiter and
// on another process's.
func TestRefusalsUntilTheWaitIsOver(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	ctx := context.Background()
	rdb := testenv.Redis(t, cfg)
	const token = "bcdefghijklmnopqrstuvwxyza"
	if err := numbering.New(rdb, cfg.Namespace).ApplicationConfirmed(ctx, token); err != nil {
		t.Fatal(err)
	}
	limiter := func() *ratelimit.Limiter {
		return ratelimit.New(ratelimit.NewStore(rdb, cfg.Namespace), ratelimit.Defaults{Commands: 2, Burst: 1}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	}
	here, there := limiter(), limiter()
	for i := range 2 {
		if d, err := here.Allow(ctx, ratelimit.Commands, token); err != nil || !d.Allowed {
			t.Fatalf("command %d within the budget: %+v, %v", i, d, err)
		}
	}
	first, err := here.Allow(ctx, ratelimit.Commands, token)
	if err != nil || first.Allowed || first.RetryAfter <= 0 || first.RetryAfter > 500*time.Millisecond {
		t.Fatalf("over the budget: %+v, %v; want refused, with a wait of at most 1/rate", first, err)
	}
	for range 20 {
		d, err := here.Allow(ctx, ratelimit.Commands, token)
		if err != nil || d.Allowed || d.RetryAfter > first.RetryAfter || d.Remaining != 0 {
			t.Fatalf("again before the wait is over: %+v, %v", d, err)
		}
	}
	time.Sleep(first.RetryAfter + 50*time.Millisecond)
	if d, err := there.Allow(ctx, ratelimit.Commands, token); err != nil || !d.Allowed {
		t.Fatalf("after the wait, on another process: %+v, %v", d, err)
	}
	if d, err := here.Allow(ctx, ratelimit.Commands, token); err != nil || d.Allowed {
		t.Fatalf("the budget was taken by the other process; this one: %+v, %v", d, err)
	}
}
