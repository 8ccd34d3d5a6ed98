package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/pause"
)

// Runner tails one partition of the event store and feeds a projection. It
// runs in the process that holds the partition's writer lease, which wakes
// it when it appends.
type Runner struct {
	proj      Projection
	applier   *Applier
	partition int
	store     *eventstore.Store
	reader    *Reader
	codec     *events.Codec
	// watch tells the partition's head and whether a replay asks the
	// projection to stand aside.
	watch     *Watch
	batchSize int
	poll      time.Duration
	wake      chan struct{}
	// tail holds what the partition's writer handed over after its appends.
	tail       *tail
	log        *slog.Logger
	lagEvents  prometheus.Gauge
	lagSeconds prometheus.Gauge
	// forget removes the partition's lag series when the runner stops: the
	// partition's next holder reports them.
	forget  func()
	delay   prometheus.Observer
	applied prometheus.Counter
	// failures counts the attempts that failed in a row, so that an outage
	// is logged when it starts, every minute while it lasts and when it
	// ends, rather than on every retry. Only Run's goroutine touches it.
	failures int

	// batchBytes caps a batch's payload bytes besides its events: a
	// thousand events of large messages must not be held, decoded and
	// written at once.
	batchBytes int
	onApplied  func(batch []Event)
}

// RunnerMetrics are shared by every runner of a process, labelled by projection.
type RunnerMetrics struct {
	lagEvents  *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	delay      *prometheus.HistogramVec
	applied    *prometheus.CounterVec
}

// NewRunnerMetrics registers the projection metrics.
func NewRunnerMetrics(reg prometheus.Registerer) *RunnerMetrics {
	m := &RunnerMetrics{
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chat_projection_lag_events", Help: "Events of the partition that the projection has not applied yet.",
		}, []string{"projection", "partition"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chat_projection_lag_seconds", Help: "Age of the partition's oldest event that the projection has not applied; 0 when it is caught up.",
		}, []string{"projection", "partition"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chat_projection_delay_seconds", Help: "Time from an event's append to its projection (last event of each batch).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"projection"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_projection_events_total", Help: "Events applied by the projection.",
		}, []string{"projection"}),
	}
	if reg != nil {
		reg.MustRegister(m.lagEvents, m.lagSeconds, m.delay, m.applied)
	}
	return m
}

// RunnerConfig is what a runner needs besides its projection.
type RunnerConfig struct {
	Store *eventstore.Store
	Codec *events.Codec
	// DB and Namespace name the replays' pause flags, for the watch of a
	// runner given none.
	DB        *sql.DB
	Namespace string
	Metrics   *RunnerMetrics
	Log       *slog.Logger
	// Applier, if set, applies the runner's batches together with those of
	// the other runners that share it; it must be of the runner's
	// projection. Without one the runner applies its batches alone.
	Applier *Applier
	// Watch, if set, is shared with the process's other runners, which
	// then ask the database for heads and pause flags once for all.
	Watch *Watch
	// Reader, if set, is shared with the process's other runners, whose
	// reads at about the same time are then made in one query.
	Reader *Reader
	// Applied, if set, is called with each batch once it is applied (and
	// readable): the moment to wake the readers of what it changed.
	Applied func(batch []Event)
}

// NewRunner returns a runner of proj over one partition.
func NewRunner(proj Projection, partition int, cfg RunnerConfig) *Runner {
	namespace, m, log := cfg.Namespace, cfg.Metrics, cfg.Log
	part := strconv.Itoa(partition)
	applier := cfg.Applier
	if applier == nil {
		applier = NewApplier(proj)
	} else if applier.proj != proj {
		panic(fmt.Sprintf("projections: a runner of %s given an applier of %s", proj.Name(), applier.proj.Name()))
	}
	watch := cfg.Watch
	if watch == nil {
		watch = NewWatch(cfg.Store, cfg.DB, namespace)
	}
	reader := cfg.Reader
	if reader == nil {
		reader = NewReader(cfg.Store)
	}
	return &Runner{
		proj:      proj,
		applier:   applier,
		partition: partition,
		store:     cfg.Store,
		reader:    reader,
		codec:     cfg.Codec,
		watch:     watch,
		batchSize: 1000,
		// The partition's writer, in the same process, wakes the runner
		// after every append; polling only backs that up.
		poll: time.Second,
		wake: make(chan struct{}, 1),
		// Two full batches: more than the runner applies while the writer
		// appends, unless it falls behind, and then it reads the log.
		tail:       &tail{maxLen: 2000, maxBytes: 8 << 20},
		log:        log.With("projection", proj.Name(), "partition", partition),
		lagEvents:  m.lagEvents.WithLabelValues(proj.Name(), part),
		lagSeconds: m.lagSeconds.WithLabelValues(proj.Name(), part),
		forget: func() {
			m.lagEvents.DeleteLabelValues(proj.Name(), part)
			m.lagSeconds.DeleteLabelValues(proj.Name(), part)
		},
		delay:   m.delay.WithLabelValues(proj.Name()),
		applied: m.applied.WithLabelValues(proj.Name()),

		batchBytes: 4 << 20,
		onApplied:  cfg.Applied,
	}
}

// Notify wakes the runner: events were appended. It never blocks.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Offer hands the runner the events its partition's writer just stored, in
// position order, and wakes it: it applies them without reading them back
// from the log when they follow on from its checkpoint. It never blocks.
func (r *Runner) Offer(stored []eventstore.Stored) {
	r.tail.add(stored)
	r.Notify()
}

var errPaused = errors.New("paused for a replay")

// ErrCheckpointMoved means a batch does not follow on from the projection's
// checkpoint in its partition: a replay swapped a rebuilt copy in, with
// positions of its own, while the batch was read. The runner starts again
// from the checkpoint.
var ErrCheckpointMoved = errors.New("the projection's checkpoint moved")

func (r *Runner) paused(ctx context.Context) (bool, error) {
	return r.watch.Paused(ctx, r.proj.Name())
}

// Run projects the partition until ctx ends, standing aside while a replay
// of the projection asks it to.
func (r *Runner) Run(ctx context.Context) error {
	defer r.forget()
	for ctx.Err() == nil {
		if p, err := r.paused(ctx); err == nil && p {
			_ = pause.For(ctx, 200*time.Millisecond)
			continue
		}
		err := r.project(ctx)
		switch {
		case errors.Is(err, errPaused):
			r.log.Info("standing aside for a replay")
			continue
		case errors.Is(err, ErrCheckpointMoved):
			r.log.Info("a replay swapped a rebuilt copy in; going on from its position")
			continue
		}
		if ctx.Err() == nil {
			r.failed(err)
			_ = pause.For(ctx, time.Second)
		}
	}
	return nil
}

func (r *Runner) project(ctx context.Context) error {
	pos, err := r.proj.Checkpoint(ctx, r.partition)
	if err != nil {
		return err
	}
	ticker := time.NewTicker(r.poll)
	defer ticker.Stop()
	// The pause flag and the heads come from the process's watch, which
	// asks once for all its runners: with many partitions a process runs
	// many runners, and their idle queries would cost the database more
	// than their batches. A poll reads only when the head moved past the
	// checkpoint.
	var measured, checked time.Time
	idle := false
	for {
		if p, err := r.paused(ctx); err != nil {
			return err
		} else if p {
			return errPaused
		}
		if !idle {
			next, more, err := r.step(ctx, pos)
			if err != nil {
				return err
			}
			r.resumed()
			pos = next
			if more {
				continue
			}
		}
		if time.Since(measured) >= measureEvery {
			measured = time.Now()
			r.measureLag(ctx, pos)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
			idle = false
		case <-ticker.C:
			head, err := r.watch.Head(ctx, r.partition)
			idle = err == nil && head <= pos
			// A replay may have swapped in a copy behind pos (this runner
			// applied its last events to the old tables before it saw the
			// pause): with nothing new in the log, nothing else would
			// bring those events into the copy.
			if idle && time.Since(checked) >= checkIdleEvery {
				checked = time.Now()
				if cp, err := r.proj.Checkpoint(ctx, r.partition); err == nil && cp != pos {
					return ErrCheckpointMoved
				}
			}
		}
	}
}

// checkIdleEvery is how often an idle runner reads its checkpoint to see
// whether a replay moved it.
const checkIdleEvery = 2 * time.Second

// lookEvery is how old the heads and pause flags a watch answers with may
// be; measureEvery is how often a runner measures its lag.
const (
	lookEvery    = 250 * time.Millisecond
	measureEvery = time.Second
)

// measureLag sets the lag gauges: how many events are not applied yet, and
// how old the first of them is.
func (r *Runner) measureLag(ctx context.Context, pos int64) {
	head, err := r.watch.Head(ctx, r.partition)
	if err != nil {
		return
	}
	r.lagEvents.Set(float64(max(head-pos, 0)))
	if head <= pos {
		r.lagSeconds.Set(0)
		return
	}
	if at, err := r.store.RecordedAt(ctx, r.partition, pos+1); err == nil {
		r.lagSeconds.Set(max(time.Since(at).Seconds(), 0))
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

// step applies the next batch after pos, handed over by the writer or read
// from the log, and returns the new position, and whether more events may
// be waiting.
func (r *Runner) step(ctx context.Context, pos int64) (int64, bool, error) {
	// The read may answer other runners too: it is not cut short by this
	// runner's stopping, and is bounded like theirs.
	stored := r.tail.take(pos, r.batchSize, r.batchBytes)
	if stored == nil {
		readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		var err error
		stored, err = r.reader.Read(readCtx, eventstore.ReadRequest{Partition: r.partition, After: pos, Limit: r.batchSize, MaxBytes: r.batchBytes})
		cancel()
		if err != nil || len(stored) == 0 {
			return pos, false, err
		}
	}
	batch := make([]Event, len(stored))
	bytes := 0
	for i, s := range stored {
		env, err := r.codec.Decode(s.Record)
		if err != nil {
			// A pure fold cannot skip an event: stop here, loudly, until a
			// build that reads it is deployed.
			return pos, false, fmt.Errorf("event at position %d: %w", s.Position, err)
		}
		batch[i] = Event{Partition: s.Partition, Position: s.Position, RecordedAt: s.RecordedAt, Envelope: env}
		bytes += len(s.Data)
	}
	// Shutdown waits for the batch in hand rather than abandoning it. Every
	// runner bounds its apply alike, as the Apply it joins may run under
	// another runner's context.
	applyCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := r.applier.Apply(applyCtx, batch, bytes); err != nil {
		return pos, false, fmt.Errorf("apply events %d..%d: %w", batch[0].Position, batch[len(batch)-1].Position, err)
	}
	if r.onApplied != nil {
		r.onApplied(batch)
	}
	last := batch[len(batch)-1]
	r.applied.Add(float64(len(batch)))
	r.delay.Observe(time.Since(last.RecordedAt).Seconds())
	return last.Position, eventstore.Full(stored, r.batchSize, r.batchBytes) || r.tail.waiting(), nil
}
