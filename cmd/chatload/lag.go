package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/chatsys/chat/internal/pause"
)

const (
	lagWorkers = 64   // goroutines polling at once
	lagQueue   = 4096 // measurements waiting for a poller
	lagPoll    = 5 * time.Millisecond
	lagTimeout = 30 * time.Second // a message not readable by then is a timeout
)

// lagJob is a created message whose read-your-write lag is to be measured.
type lagJob struct {
	path    string    // the message's URL path, or a search that finds it
	created time.Time // when its 201 arrived
	search  bool      // path is a search: done when it finds something
}

// lagPool measures read-your-write lag: it polls each message it is given
// until the API serves it. It has its own goroutines and connections so that
// polling does not hold up the load.
type lagPool struct {
	api    *apiClient
	jobs   chan lagJob
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	lags      *series
	interval  *series // since the last takeInterval
	polls     int64
	timeouts  int64
	skipped   int64
	abandoned int64
	errors    map[string]int64
}

// lagResult is what a lagPool measured.
type lagResult struct {
	Lag       summary
	Polls     int64
	Timeouts  int64
	Skipped   int64 // not measured: every poller was busy and the queue full
	Abandoned int64 // still unreadable when the run ended
	Errors    map[string]int64
}

// startLagPool starts the pollers; finish stops them.
func startLagPool(ctx context.Context, api *apiClient, workers, queue int) *lagPool {
	ctx, cancel := context.WithCancel(ctx)
	p := &lagPool{
		api:      api,
		jobs:     make(chan lagJob, queue),
		cancel:   cancel,
		lags:     newSeries(maxSamples),
		interval: newSeries(maxSamples),
		errors:   map[string]int64{},
	}
	for range workers {
		p.wg.Go(func() {
			for j := range p.jobs {
				p.measure(ctx, j)
			}
		})
	}
	return p
}

// submit queues j, or counts it as skipped when the queue is full. It must
// not be called after finish.
func (p *lagPool) submit(j lagJob) {
	select {
	case p.jobs <- j:
	default:
		p.mu.Lock()
		p.skipped++
		p.mu.Unlock()
	}
}

// pending returns the number of measurements waiting for a poller.
func (p *lagPool) pending() int { return len(p.jobs) }

// finish lets the pollers complete the measurements under way for at most
// grace, abandons the rest, and returns the results.
func (p *lagPool) finish(grace time.Duration) lagResult {
	close(p.jobs)
	t := time.AfterFunc(grace, p.cancel)
	p.wg.Wait()
	t.Stop()
	p.cancel()
	p.api.close()
	p.mu.Lock()
	defer p.mu.Unlock()
	return lagResult{
		Lag:       p.lags.summary(),
		Polls:     p.polls,
		Timeouts:  p.timeouts,
		Skipped:   p.skipped,
		Abandoned: p.abandoned,
		Errors:    p.errors,
	}
}

// measure polls j's message every lagPoll until it is served, lagTimeout has
// passed since its creation, or ctx is done.
func (p *lagPool) measure(ctx context.Context, j lagJob) {
	tick := time.NewTicker(lagPoll)
	defer tick.Stop()
	for {
		if ctx.Err() != nil {
			p.count(&p.abandoned)
			return
		}
		code, found, err := p.api.found(ctx, j.path, j.search)
		now := time.Now()
		p.count(&p.polls)
		switch {
		case err == nil && found:
			p.mu.Lock()
			p.lags.add(now.Sub(j.created))
			p.interval.add(now.Sub(j.created))
			p.mu.Unlock()
			return
		case ctx.Err() != nil:
			p.count(&p.abandoned)
			return
		case err != nil:
			p.fail(errorKind(err))
		case code != http.StatusNotFound && code != http.StatusOK:
			p.fail(fmt.Sprintf("http %d", code))
		}
		if now.Sub(j.created) >= lagTimeout {
			p.count(&p.timeouts)
			return
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

func (p *lagPool) count(n *int64) {
	p.mu.Lock()
	*n++
	p.mu.Unlock()
}

func (p *lagPool) fail(kind string) {
	p.mu.Lock()
	p.errors[kind]++
	p.mu.Unlock()
}

// runProbe creates a message in t every interval from the start of the
// measured window until end, apart from the load's workers, and has probe
// time each from its 201 until GET reads it: what a member of a busy chat
// sees of a message another member just sent.
func (l *loader) runProbe(ctx context.Context, probe *lagPool, t target, interval time.Duration, end time.Time) {
	if pause.For(ctx, time.Until(l.measureFrom)) != nil {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for time.Now().Before(end) {
		var msg struct {
			Number int64 `json:"number"`
		}
		err := probe.api.post(ctx, t.messages, l.body, &msg)
		switch {
		case err == nil:
			probe.submit(lagJob{path: t.messagePath(msg.Number), created: time.Now()})
		case ctx.Err() == nil:
			probe.fail("probe create: " + errorKind(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// takeInterval returns the lags measured since it was last called, and
// starts anew.
func (p *lagPool) takeInterval() summary {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.interval.summary()
	p.interval = newSeries(maxSamples)
	return s
}

// probeP99 renders the probe's p99 since the last progress line, for it.
func probeP99(probe *lagPool) string {
	if probe == nil {
		return ""
	}
	s := probe.takeInterval()
	if s.Count == 0 {
		return " probe=n/a"
	}
	return " probe_p99=" + s.P99.Round(100*time.Microsecond).String()
}
