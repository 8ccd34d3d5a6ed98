package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The neighbours mode measures one application's isolation from another
// under per-application rate limits. A quiet application creates messages
// at -rate (open loop), first alone for -duration, then for -duration more
// beside a noisy application that creates them in closed loop with
// -concurrency workers, ignoring its 429s; then for -duration more the noisy
// workers obey each 429's Retry-After. It reports the quiet application's
// latency in each phase and every answer each application got.

// phase is what one application got during one phase.
type phase struct {
	mu        sync.Mutex
	latency   *series
	answers   map[string]int64
	sent      atomic.Int64
	waited    atomic.Int64 // requests sent right after obeying a Retry-After
	waitedOK  atomic.Int64 // of those, answered 201
	retryMax  time.Duration
	startedAt time.Time
	endedAt   time.Time
}

func newPhase() *phase {
	return &phase{latency: newSeries(maxSamples), answers: map[string]int64{}, startedAt: time.Now()}
}

func (p *phase) record(latency time.Duration, err error) {
	p.sent.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.answers["201"]++
		p.latency.add(latency)
		return
	}
	var ae *apiError
	if errors.As(err, &ae) {
		p.retryMax = max(p.retryMax, ae.RetryAfter)
	}
	p.answers[errorKind(err)]++
}

// runNeighbours runs the three phases and prints the report.
func runNeighbours(ctx context.Context, cfg config, api *apiClient, stdout, stderr io.Writer) int {
	quiet, err := setup(ctx, api, 1, 1, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chatload: setup: %v\n", err)
		return 1
	}
	noisy, err := setup(ctx, api, 1, 1, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chatload: setup: %v\n", err)
		return 1
	}
	body := []byte(`{"body":"` + randomText(cfg.bodySize) + `"}`)
	fmt.Fprintf(stdout, "neighbours: quiet at %.0f creates/s; noisy in closed loop with %d workers; %s a phase\n", cfg.rate, cfg.concurrency, cfg.duration)
	for _, ph := range []struct {
		name        string
		noisy, obey bool
	}{{"quiet alone", false, false}, {"beside noisy, ignoring 429s", true, false}, {"beside noisy, obeying Retry-After", true, true}} {
		q, n := newPhase(), newPhase()
		pctx, cancel := context.WithTimeout(ctx, cfg.duration)
		var wg sync.WaitGroup
		if ph.noisy {
			for range cfg.concurrency {
				wg.Go(func() { hammer(pctx, api, noisy[0], body, ph.obey, n) })
			}
		}
		pace(pctx, api, quiet[0], body, cfg.rate, q)
		cancel()
		wg.Wait()
		q.endedAt, n.endedAt = time.Now(), time.Now()
		writePhase(stdout, ph.name, "quiet", q)
		if ph.noisy {
			writePhase(stdout, ph.name, "noisy", n)
		}
	}
	return 0
}

// pace sends one create every 1/rate until ctx ends, each in its own
// goroutine, timing each from when it was due.
func pace(ctx context.Context, api *apiClient, t target, body []byte, rate float64, p *phase) {
	var wg sync.WaitGroup
	defer wg.Wait()
	every := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		due := next
		wg.Go(func() {
			err := api.post(context.WithoutCancel(ctx), t.messages, body, nil)
			p.record(time.Since(due), err)
		})
		next = next.Add(every)
	}
}

// hammer creates messages back to back until ctx ends; with obey, it waits
// out each 429's Retry-After and notes whether the next one got through.
func hammer(ctx context.Context, api *apiClient, t target, body []byte, obey bool, p *phase) {
	afterWait := false
	for ctx.Err() == nil {
		start := time.Now()
		err := api.post(ctx, t.messages, body, nil)
		if ctx.Err() != nil {
			return
		}
		p.record(time.Since(start), err)
		if afterWait {
			p.waited.Add(1)
			if err == nil {
				p.waitedOK.Add(1)
			}
		}
		afterWait = false
		var ae *apiError
		if obey && errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
			select {
			case <-ctx.Done():
				return
			case <-time.After(ae.RetryAfter):
			}
			afterWait = true
		}
	}
}

func writePhase(w io.Writer, phase, who string, p *phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	secs := p.endedAt.Sub(p.startedAt).Seconds()
	s := p.latency.summary()
	fmt.Fprintf(w, "  %-36s %-5s sent %7d (%7.0f/s)  201 %6d (%5.0f/s)  answers %v", phase, who, p.sent.Load(), float64(p.sent.Load())/secs, p.answers["201"], float64(p.answers["201"])/secs, p.answers)
	if who == "quiet" {
		fmt.Fprintf(w, "  201 latency p50 %.1f ms p99 %.1f ms max %.1f ms", ms(s.P50), ms(s.P99), ms(s.Max))
	}
	if p.retryMax > 0 {
		fmt.Fprintf(w, "  Retry-After at most %s", p.retryMax)
	}
	if n := p.waited.Load(); n > 0 {
		fmt.Fprintf(w, "  after waiting: %d of %d got a 201", p.waitedOK.Load(), n)
	}
	fmt.Fprintln(w)
}
