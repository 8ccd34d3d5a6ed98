package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatsys/chat/internal/pause"
)

const progressEvery = 5 * time.Second

// loadResult is what the load phase measured. Only requests due inside the
// measured window count; the warm-up is left out.
type loadResult struct {
	Window  time.Duration
	Sent    int64
	Created int64
	Dropped int64 // due while every worker was busy and the backlog full
	Errors  map[string]int64
	Latency summary // of 201s, from the scheduled start
	Service summary // of 201s, from the actual start
	Lag     *lagResult
	Probe   *lagResult
	CPU     []cpuUse
	// Readable is whether every 201 reads back (nil when not checked).
	Readable *readableResult
}

// recorder collects the results of measured requests.
type recorder struct {
	mu      sync.Mutex
	sent    int64
	created int64
	dropped int64
	errors  map[string]int64
	latency *series
	service *series
	// interval is the latency since the last progress line.
	interval *series
}

func newRecorder() *recorder {
	return &recorder{errors: map[string]int64{}, latency: newSeries(maxSamples), service: newSeries(maxSamples), interval: newSeries(maxSamples)}
}

func (r *recorder) success(latency, service time.Duration) {
	r.mu.Lock()
	r.sent++
	r.created++
	r.latency.add(latency)
	r.service.add(service)
	r.interval.add(latency)
	r.mu.Unlock()
}

// takeInterval returns the latency since it was last called, and starts
// anew.
func (r *recorder) takeInterval() summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.interval.summary()
	r.interval = newSeries(maxSamples)
	return s
}

func (r *recorder) failure(kind string) {
	r.mu.Lock()
	r.sent++
	r.errors[kind]++
	r.mu.Unlock()
}

func (r *recorder) drop() {
	r.mu.Lock()
	r.dropped++
	r.mu.Unlock()
}

// counters are the running totals of the whole run, warm-up included, for
// the progress lines.
type counters struct {
	sent, ok, failed, dropped atomic.Int64
}

// loader posts messages to the targets, round-robin.
type loader struct {
	api         *apiClient
	targets     []target
	body        []byte
	lag         *lagPool // nil when lag is not measured
	lagFraction float64
	lagSearch   bool
	measureFrom time.Time
	rec         *recorder
	live        counters
	// created counts each target's 201s, warm-up included.
	created []atomic.Int64
	log     io.Writer

	seenMu sync.Mutex
	seen   map[string]bool
}

// fire posts message seq, due at due, and records the outcome.
func (l *loader) fire(ctx context.Context, seq int64, due time.Time) {
	t := l.targets[seq%int64(len(l.targets))]
	measured := !due.Before(l.measureFrom)
	sample := measured && l.lag != nil && rand.Float64() < l.lagFraction
	var msg struct {
		Number int64 `json:"number"`
	}
	var out any
	if sample {
		out = &msg
	}
	body, word := l.body, ""
	if sample && l.lagSearch {
		// A word no other message has, to search for.
		word = "w" + randomLetters(12)
		body = fmt.Appendf(nil, `{"body":%q}`, word+" "+randomText(max(len(l.body)-24, 1)))
	}
	l.live.sent.Add(1)
	start := time.Now()
	err := l.api.post(ctx, t.messages, body, out)
	done := time.Now()
	if err != nil && ctx.Err() != nil {
		return // cut short by an interrupt, not failed by the server
	}
	if err != nil {
		l.live.failed.Add(1)
		kind := errorKind(err)
		l.noteFirst(kind, err)
		if measured {
			l.rec.failure(kind)
		}
		return
	}
	l.live.ok.Add(1)
	l.created[seq%int64(len(l.targets))].Add(1)
	if !measured {
		return
	}
	l.rec.success(done.Sub(due), done.Sub(start))
	switch {
	case sample && word != "":
		l.lag.submit(lagJob{path: t.searchPath(word), created: done, search: true})
	case sample && msg.Number > 0:
		l.lag.submit(lagJob{path: t.messagePath(msg.Number), created: done})
	}
}

// noteFirst logs the first error of each kind in full.
func (l *loader) noteFirst(kind string, err error) {
	l.seenMu.Lock()
	first := !l.seen[kind]
	l.seen[kind] = true
	l.seenMu.Unlock()
	if first && kind != "canceled" {
		fmt.Fprintf(l.log, "chatload: first error of kind %q: %v\n", kind, err)
	}
}

// job is one scheduled request.
type job struct {
	seq int64
	due time.Time
}

// openLoop issues requests at rate per second until end, from workers
// goroutines. A request due while every worker is busy waits in a backlog
// as deep as there are workers; past that it is dropped. It returns when
// the last request has finished.
func (l *loader) openLoop(ctx context.Context, s schedule, end time.Time, workers int) {
	jobs := make(chan job, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() == nil {
					l.fire(ctx, j.seq, j.due)
				}
			}
		})
	}
	s.run(ctx, end, realClock{}, func(seq int64, due time.Time) {
		select {
		case jobs <- job{seq, due}:
		default:
			l.live.dropped.Add(1)
			if !due.Before(l.measureFrom) {
				l.rec.drop()
			}
		}
	})
	close(jobs)
	wg.Wait()
}

// closedLoop has workers goroutines post one message after another, as fast
// as the server answers, until end.
func (l *loader) closedLoop(ctx context.Context, end time.Time, workers int) {
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(end) {
					return
				}
				l.fire(ctx, seq.Add(1)-1, now)
			}
		})
	}
	wg.Wait()
}

// progress prints a line every progressEvery until ctx is done.
func (l *loader) progress(ctx context.Context, start time.Time, probe *lagPool) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	last, lastOK := start, int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			ok := l.live.ok.Load()
			phase := "warmup"
			if !last.Before(l.measureFrom) {
				phase = "measure"
			}
			fmt.Fprintf(l.log, "chatload: %5.0fs %-7s sent=%d ok=%d errors=%d dropped=%d rate=%.0f/s p99=%s%s\n",
				now.Sub(start).Seconds(), phase, l.live.sent.Load(), ok, l.live.failed.Load(),
				l.live.dropped.Load(), float64(ok-lastOK)/now.Sub(last).Seconds(),
				l.rec.takeInterval().P99.Round(100*time.Microsecond), probeP99(probe))
			last, lastOK = now, ok
		}
	}
}

// runLoad runs the warm-up and the measured window and returns what was
// measured.
func runLoad(ctx context.Context, cfg config, api *apiClient, targets []target, log io.Writer) loadResult {
	start := time.Now()
	l := &loader{
		api:         api,
		targets:     targets,
		body:        messageBody(cfg.bodySize),
		lagFraction: cfg.lagSample,
		lagSearch:   cfg.lagVia == "search",
		measureFrom: start.Add(cfg.warmup),
		rec:         newRecorder(),
		created:     make([]atomic.Int64, len(targets)),
		log:         log,
		seen:        map[string]bool{},
	}
	end := l.measureFrom.Add(cfg.duration)
	if cfg.lagSample > 0 {
		l.lag = startLagPool(ctx, newAPIClient(cfg.url, lagWorkers), lagWorkers, lagQueue)
	}

	progressCtx, stopProgress := context.WithCancel(ctx)
	var pg sync.WaitGroup
	var probe *lagPool
	if cfg.probe > 0 {
		probe = startLagPool(ctx, newAPIClient(cfg.url, 8), 8, 64)
	}
	pg.Go(func() { l.progress(progressCtx, start, probe) })
	var cpuFrom cpuSample
	pg.Go(func() {
		if pause.For(progressCtx, time.Until(l.measureFrom)) == nil {
			cpuFrom = sampleCPU(cfg.cpu)
		}
	})
	if probe != nil {
		pg.Go(func() { l.runProbe(progressCtx, probe, targets[0], cfg.probe, end) })
	}

	if cfg.rate > 0 {
		l.openLoop(ctx, schedule{start: start, rate: cfg.rate}, end, cfg.concurrency)
	} else {
		l.closedLoop(ctx, end, cfg.concurrency)
	}
	stopped := time.Now()
	if stopped.After(end) {
		stopped = end
	}
	cpuTo := sampleCPU(cfg.cpu)
	stopProgress()
	pg.Wait()

	res := l.rec.result(max(stopped.Sub(l.measureFrom), 0))
	if cpuFrom != nil {
		res.CPU = cpuUses(cfg.cpu, cpuFrom, cpuTo, res.Created)
	}
	if cfg.checkReadable && ctx.Err() == nil {
		fmt.Fprintf(log, "chatload: load done; waiting for every 201 to read back\n")
		r := countReadable(ctx, api, targets, l.created)
		res.Readable = &r
	}
	if probe != nil {
		p := probe.finish(lagTimeout + time.Second)
		res.Probe = &p
	}
	if l.lag != nil {
		fmt.Fprintf(log, "chatload: load done; finishing read-your-write measurements (%d queued)\n", l.lag.pending())
		lag := l.lag.finish(lagTimeout + time.Second)
		res.Lag = &lag
	}
	return res
}

func (r *recorder) result(window time.Duration) loadResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return loadResult{
		Window:  window,
		Sent:    r.sent,
		Created: r.created,
		Dropped: r.dropped,
		Errors:  r.errors,
		Latency: r.latency.summary(),
		Service: r.service.summary(),
	}
}

// messageBody returns the JSON request body of a message of size bytes:
// words of 2 to 9 letters, like text (a search index does per word what it
// does, so one long word would cost it far more than real messages do).
func messageBody(size int) []byte {
	return fmt.Appendf(nil, `{"body":%q}`, randomText(max(size, 1)))
}

func randomText(n int) string {
	b := make([]byte, 0, n)
	for len(b) < n {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, randomLetters(2+rand.IntN(8))...)
	}
	return string(b[:n])
}

func randomLetters(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	text := make([]byte, n)
	for i := range text {
		text[i] = letters[rand.IntN(len(letters))]
	}
	return string(text)
}
