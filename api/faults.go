package api

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// faultLog turns failed requests into a few log lines instead of one per
// request: an outage of one dependency refuses every command, and a line for
// each would bury the one that matters. The first failure of a kind is
// logged with its cause; while failures go on, a summary with counts follows
// every interval; once none has come for an interval, one line says the
// kind is clear again, with the total.
type faultLog struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time
	open     atomic.Bool // any fault open: the fast path of settle
	mu       sync.Mutex
	faults   map[string]*fault
}

type fault struct {
	level         slog.Level
	since, last   time.Time
	reported      time.Time
	total, recent int64
	cause         string
}

func newFaultLog(log *slog.Logger, interval time.Duration) *faultLog {
	return &faultLog{log: log, interval: interval, now: time.Now, faults: map[string]*fault{}}
}

// failed counts one failed request of kind key. attrs describe the first
// failure (its cause, its request); later ones only count until the summary.
func (f *faultLog) failed(key string, level slog.Level, msg, cause string, attrs ...any) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.faults[key]
	if !ok {
		f.faults[key] = &fault{level: level, since: now, last: now, reported: now, total: 1, cause: cause}
		f.open.Store(true)
		f.log.Log(context.Background(), level, msg, append([]any{"fault", key, "err", cause}, attrs...)...)
		return
	}
	ft.last, ft.cause = now, cause
	ft.total++
	ft.recent++
	if now.Sub(ft.reported) >= f.interval {
		f.log.Log(context.Background(), ft.level, "failures go on", "fault", key, "failed", ft.recent, "interval", now.Sub(ft.reported).Round(time.Millisecond).String(), "failed_total", ft.total, "since", ft.since, "last_err", cause)
		ft.reported, ft.recent = now, 0
	}
}

// settle closes the faults that have been quiet for an interval. It runs
// after every request, so it costs one atomic load while nothing fails.
func (f *faultLog) settle() {
	if !f.open.Load() {
		return
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, ft := range f.faults {
		if now.Sub(ft.last) < f.interval {
			continue
		}
		f.log.Log(context.Background(), slog.LevelInfo, "failures stopped", "fault", key, "failed_total", ft.total, "lasted", ft.last.Sub(ft.since).Round(time.Millisecond).String(), "last_err", ft.cause)
		delete(f.faults, key)
	}
	f.open.Store(len(f.faults) > 0)
}
