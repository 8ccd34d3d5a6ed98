package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
)

// worker is a long-running part of a process, named so that a shutdown
// that waits for it can say which.
type worker struct {
	name string
	run  func(context.Context) error
}

// running tracks the workers that have not returned yet.
type running struct {
	mu   sync.Mutex
	left map[string]int
	wg   sync.WaitGroup
}

func newRunning() *running { return &running{left: map[string]int{}} }

// start runs w until ctx ends or it returns.
func (r *running) start(ctx context.Context, w worker, log *slog.Logger) {
	r.mu.Lock()
	r.left[w.name]++
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.done(w.name)
		if err := w.run(ctx); err != nil {
			log.Error("worker stopped", "worker", w.name, "err", err)
		}
	}()
}

func (r *running) done(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.left[name]--; r.left[name] <= 0 {
		delete(r.left, name)
	}
}

// wait reports whether every worker returned before ctx ended.
func (r *running) wait(ctx context.Context) bool { return waitFor(ctx, &r.wg) }

// waitFor reports whether wg's count fell to zero before ctx ended.
func waitFor(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// names are the workers still running, sorted.
func (r *running) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.left))
	for n := range r.left {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
