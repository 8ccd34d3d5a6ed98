// Package projections folds the event log into the read side: the runner
// that tails the log for a projection, the MySQL and search projections, and
// replay, which rebuilds one while the system serves.
package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/pause"
	"github.com/chatsys/chat/mysqldb"
)

// Event is one stored event, decoded.
type Event struct {
	Position   int64
	RecordedAt time.Time
	events.Envelope
}

// Projection is one read model folded from the event log.
type Projection interface {
	// Name identifies the projection's checkpoint and lock.
	Name() string
	// Checkpoint returns the position of the last event applied.
	Checkpoint(ctx context.Context, lock *mysqldb.Lock) (int64, error)
	// Apply applies a batch in position order and records its last position
	// as the checkpoint, so that no event is applied twice or skipped.
	Apply(ctx context.Context, lock *mysqldb.Lock, batch []Event) error
}

// Runner tails the event store and feeds a projection, one process at a
// time (a named lock per projection; the others wait as standbys).
type Runner struct {
	proj     Projection
	store    *eventstore.Store
	codec    *events.Codec
	db       *sql.DB
	lockName string
	// A replay asks the projection to stand aside with a flag among the
	// checkpoints.
	checkpoints *checkpoint.Store
	batchSize   int
	poll        time.Duration
	wake        chan struct{}
	log         *slog.Logger
	lagEvents   prometheus.Gauge
	delay       prometheus.Observer
	applied     prometheus.Counter
	// failures counts the attempts that failed in a row, so that an outage
	// is logged when it starts, every minute while it lasts and when it
	// ends, rather than on every retry. Only Run's goroutine touches it.
	failures int

	// batchBytes caps a batch's payload bytes besides its events: a
	// thousand events of large messages must not be held, decoded and
	// written at once.
	batchBytes int
}

// RunnerMetrics are shared by every runner of a process, labelled by projection.
type RunnerMetrics struct {
	lagEvents *prometheus.GaugeVec
	delay     *prometheus.HistogramVec
	applied   *prometheus.CounterVec
}

// NewRunnerMetrics registers the projection metrics.
func NewRunnerMetrics(reg prometheus.Registerer) *RunnerMetrics {
	m := &RunnerMetrics{
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chat_projection_lag_events", Help: "Events in the store that the projection has not applied yet.",
		}, []string{"projection"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chat_projection_delay_seconds", Help: "Time from an event's append to its projection (last event of each batch).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"projection"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_projection_events_total", Help: "Events applied by the projection.",
		}, []string{"projection"}),
	}
	if reg != nil {
		reg.MustRegister(m.lagEvents, m.delay, m.applied)
	}
	return m
}

// RunnerConfig is what a runner needs besides its projection.
type RunnerConfig struct {
	Store *eventstore.Store
	Codec *events.Codec
	// DB holds the projection's lock and checkpoint.
	DB *sql.DB
	// Namespace scopes the lock and the checkpoints.
	Namespace string
	Metrics   *RunnerMetrics
	Log       *slog.Logger
}

// NewRunner returns a runner of proj.
func NewRunner(proj Projection, cfg RunnerConfig) *Runner {
	names := catalog.New(cfg.Namespace)
	namespace, m, log := cfg.Namespace, cfg.Metrics, cfg.Log
	return &Runner{
		proj:        proj,
		store:       cfg.Store,
		codec:       cfg.Codec,
		db:          cfg.DB,
		lockName:    names.ProjectionLock(proj.Name()),
		checkpoints: checkpoint.New(namespace),
		batchSize:   1000,
		poll:        50 * time.Millisecond,
		wake:        make(chan struct{}, 1),
		log:         log.With("projection", proj.Name()),
		lagEvents:   m.lagEvents.WithLabelValues(proj.Name()),
		delay:       m.delay.WithLabelValues(proj.Name()),
		applied:     m.applied.WithLabelValues(proj.Name()),

		batchBytes: 4 << 20,
	}
}

// Notify wakes the runner: events were appended. It never blocks.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

var errPaused = errors.New("paused for a replay")

func (r *Runner) paused(ctx context.Context) (bool, error) {
	return r.checkpoints.Paused(ctx, r.db, r.proj.Name())
}

// Run projects until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if p, err := r.paused(ctx); err == nil && p {
			_ = pause.For(ctx, 200*time.Millisecond)
			continue
		}
		lock, err := mysqldb.AcquireLock(ctx, r.db, r.lockName)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("projection lock", "err", err)
				_ = pause.For(ctx, time.Second)
			}
			continue
		}
		r.log.Info("projecting")
		err = r.project(ctx, lock)
		lock.Release()
		if errors.Is(err, errPaused) {
			r.log.Info("standing aside for a replay")
			continue
		}
		if ctx.Err() == nil {
			r.failed(err)
			_ = pause.For(ctx, time.Second)
		}
	}
	return nil
}

func (r *Runner) project(ctx context.Context, lock *mysqldb.Lock) error {
	pos, err := r.proj.Checkpoint(ctx, lock)
	if err != nil {
		return err
	}
	ticker := time.NewTicker(r.poll)
	defer ticker.Stop()
	for {
		if p, err := r.paused(ctx); err != nil {
			return err
		} else if p {
			return errPaused
		}
		next, more, err := r.step(ctx, lock, pos)
		if err != nil {
			return err
		}
		r.resumed()
		pos = next
		if more {
			continue
		}
		if head, err := r.store.Head(ctx); err == nil {
			r.lagEvents.Set(float64(max(head-pos, 0)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
		case <-ticker.C:
			if err := lock.Check(ctx); err != nil {
				return err
			}
		}
	}
}

// failed logs a failed attempt: the first of a run, then one a minute.
func (r *Runner) failed(err error) {
	r.failures++
	switch {
	case r.failures == 1:
		r.log.Error("projection stopped; retrying every second", "err", err)
	case r.failures%60 == 0:
		r.log.Warn("projection still failing", "attempts", r.failures, "err", err)
	}
}

// resumed logs the end of a run of failures.
func (r *Runner) resumed() {
	if r.failures > 0 {
		r.log.Info("projection resumed", "failed_attempts", r.failures)
		r.failures = 0
	}
}

// step applies the next batch after pos and returns the new position, and
// whether more events may be waiting.
func (r *Runner) step(ctx context.Context, lock *mysqldb.Lock, pos int64) (int64, bool, error) {
	stored, err := r.store.Read(ctx, pos, r.batchSize, r.batchBytes)
	if err != nil || len(stored) == 0 {
		return pos, false, err
	}
	batch := make([]Event, len(stored))
	for i, s := range stored {
		env, err := r.codec.Decode(s.Record)
		if err != nil {
			// A pure fold cannot skip an event: stop here, loudly, until a
			// build that reads it is deployed.
			return pos, false, fmt.Errorf("event at position %d: %w", s.Position, err)
		}
		batch[i] = Event{Position: s.Position, RecordedAt: s.RecordedAt, Envelope: env}
	}
	// Shutdown waits for the batch in hand rather than abandoning it.
	applyCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := r.proj.Apply(applyCtx, lock, batch); err != nil {
		return pos, false, fmt.Errorf("apply events %d..%d: %w", batch[0].Position, batch[len(batch)-1].Position, err)
	}
	last := batch[len(batch)-1]
	r.applied.Add(float64(len(batch)))
	r.delay.Observe(time.Since(last.RecordedAt).Seconds())
	return last.Position, eventstore.Full(stored, r.batchSize, r.batchBytes), nil
}
