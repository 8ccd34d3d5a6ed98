// Package ingest consumes the broker's event queue and appends what it
// receives to the event store in batches, acknowledging each message only
// once its batch is committed.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/groupcommit"
	"github.com/chatsys/chat/internal/pause"
)

// ErrConflict marks an event that claims a stream version another event
// holds. It is parked in the dead-letter queue, never stored.
var ErrConflict = errors.New("stream version already taken by another event")

// WriterConfig sizes the writer.
type WriterConfig struct {
	// Consumers is the number of broker subscriptions of each partition the
	// writer writes. Each holds one unacknowledged message while its batch
	// commits, so this is also the partition's largest batch.
	Consumers int
	// MaxBatchBytes bounds the payload bytes of a partition's batch and of
	// one append transaction (its one INSERT), well under
	// max_allowed_packet (16 MiB on MariaDB by default).
	MaxBatchBytes int
	// AMQP is the Watermill configuration to consume and park with.
	AMQP wamqp.Config

	Store *eventstore.Store
	Codec *events.Codec
	Log   *slog.Logger
	// Registerer (optional) gets the writer's metrics.
	Registerer prometheus.Registerer
}

// Writer consumes the partitions' queues and appends what they hold to the
// event store in batches, acknowledging each message only after its batch
// committed. It writes the partitions it is given leases on, each with its
// own consumers, batches and positions; the batches of the partitions that
// are ready at the same time commit in one transaction, so that a process
// pays about as many commits for many partitions as for one.
type Writer struct {
	store   *eventstore.Store
	codec   *events.Codec
	cfg     WriterConfig
	wlog    watermill.LoggerAdapter
	log     *slog.Logger
	metrics writerMetrics
	group   *groupcommit.Group[eventstore.Batch, eventstore.Result]

	deadMu sync.Mutex
	dead   *wamqp.Publisher
}

// pending is the records of one broker message on their way into a batch:
// once done is closed, status has a status per record, or err is set.
type pending struct {
	recs   []events.Record
	status []eventstore.Status
	err    error
	done   chan struct{}
}

type writerMetrics struct {
	batchSize  prometheus.Histogram
	partitions prometheus.Histogram
	latency    prometheus.Histogram
	records    *prometheus.CounterVec
}

// NewWriter returns a writer. Close it when it is no longer served.
func NewWriter(cfg WriterConfig) *Writer {
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = 4 << 20
	}
	w := &Writer{
		store: cfg.Store,
		codec: cfg.Codec,
		cfg:   cfg,
		wlog:  broker.Logger(cfg.Log),
		log:   cfg.Log,
		metrics: writerMetrics{
			batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "chat_eventstore_append_batch_size", Help: "Events per event store append transaction.",
				Buckets: prometheus.ExponentialBuckets(1, 2, 11),
			}),
			partitions: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "chat_eventstore_append_partitions", Help: "Partitions written by one event store append transaction.",
				Buckets: prometheus.ExponentialBuckets(1, 2, 8),
			}),
			latency: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "chat_eventstore_append_seconds", Help: "Time to append one transaction's batches, commit included.",
				Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
			}),
			records: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "chat_eventstore_records_total", Help: "Records handled by the event store writer, by outcome (appended, duplicate, conflict, undecodable).",
			}, []string{"outcome"}),
		},
	}
	w.group = groupcommit.New(w.appendAll, batchBytes, cfg.MaxBatchBytes)
	// Every outcome is exported from the start, at 0, so that the first
	// conflict shows as an increase.
	for _, outcome := range []string{"appended", "duplicate", "conflict", "undecodable"} {
		w.metrics.records.WithLabelValues(outcome)
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(w.metrics.batchSize, w.metrics.partitions, w.metrics.latency, w.metrics.records)
	}
	return w
}

// appendAll commits the batches of several partitions in one transaction.
// A partition taken over fails that partition's batch alone, and records
// that collide with stored ones are sorted out in their partition's
// transaction: in both cases the batches are appended again one at a time.
func (w *Writer) appendAll(ctx context.Context, batches []eventstore.Batch) ([]eventstore.Result, error) {
	start := time.Now()
	res, err := w.store.AppendAll(ctx, batches)
	if err != nil {
		if errors.Is(err, eventstore.ErrFenced) || errors.Is(err, eventstore.ErrCollision) {
			err = groupcommit.Split(err)
		}
		return nil, err
	}
	w.metrics.latency.Observe(time.Since(start).Seconds())
	n := 0
	for _, b := range batches {
		n += len(b.Records)
	}
	w.metrics.batchSize.Observe(float64(n))
	w.metrics.partitions.Observe(float64(len(batches)))
	return res, nil
}

func batchBytes(b eventstore.Batch) int {
	n := 0
	for _, r := range b.Records {
		n += len(r.Data)
	}
	return n
}

// Close closes the dead-letter publisher.
func (w *Writer) Close() error {
	w.deadMu.Lock()
	defer w.deadMu.Unlock()
	if w.dead == nil {
		return nil
	}
	err := w.dead.Close()
	w.dead = nil
	return err
}

// deadPublisher returns the publisher that parks what cannot be stored,
// connecting it the first time.
func (w *Writer) deadPublisher() (*wamqp.Publisher, error) {
	w.deadMu.Lock()
	defer w.deadMu.Unlock()
	if w.dead != nil {
		return w.dead, nil
	}
	cfg := w.cfg.AMQP
	cfg.Publish.ChannelPoolSize = 2
	dead, err := wamqp.NewPublisher(cfg, w.wlog)
	if err != nil {
		return nil, fmt.Errorf("connect dead-letter publisher: %w", err)
	}
	w.dead = dead
	return dead, nil
}

// Serve writes app's partition until ctx ends or the partition is taken
// over (eventstore.ErrFenced): it consumes the partition's queue and
// appends in batches. Messages in hand when it stops are finished (their
// batch commits and they are acknowledged) or, if their batch failed,
// given back to the queue. onAppend (optional) is called after every commit
// that stored something, with the events stored, in position order.
func (w *Writer) Serve(ctx context.Context, app *eventstore.Appender, onAppend func([]eventstore.Stored)) error {
	dead, err := w.deadPublisher()
	if err != nil {
		return err
	}
	part := partitionWriter{w: w, app: app, onAppend: onAppend, in: make(chan *pending, w.cfg.Consumers)}
	handler, err := w.chain(dead, part.handle)
	if err != nil {
		return err
	}
	subs := make([]*wamqp.Subscriber, (w.cfg.Consumers+subscriptionsPerConnection-1)/subscriptionsPerConnection)
	for i := range subs {
		sub, err := wamqp.NewSubscriber(w.cfg.AMQP, w.wlog)
		if err != nil {
			return fmt.Errorf("connect subscriber: %w", err)
		}
		defer sub.Close()
		subs[i] = sub
	}

	consumeCtx, stopConsuming := context.WithCancelCause(ctx)
	defer stopConsuming(nil)

	batcherDone := make(chan struct{})
	stopBatcher := make(chan struct{})
	go func() {
		defer close(batcherDone)
		part.batch(consumeCtx, stopBatcher, stopConsuming)
	}()

	var consumers sync.WaitGroup
	for i := 0; i < w.cfg.Consumers; i++ {
		msgs, err := subs[i%len(subs)].Subscribe(consumeCtx, broker.PartitionTopic(app.Partition()))
		if err != nil {
			stopConsuming(err)
			break
		}
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			for msg := range msgs {
				if _, err := handler(msg); err != nil {
					// Only a transient failure gets here (what can never
					// be stored was parked). Each return spends one of the
					// queue's deliveries: holding the message first spaces
					// them, so the delivery limit outlasts hours of outage.
					// A writer that lost its partition gives it back at
					// once, to the new writer.
					if !errors.Is(err, eventstore.ErrFenced) {
						_ = pause.For(consumeCtx, returnDelay)
					}
					msg.Nack()
				} else {
					msg.Ack()
				}
			}
		}()
	}

	<-consumeCtx.Done()
	// Subscriptions finish the message in hand (its batch commits and it is
	// acknowledged) and stop; then the batcher has nothing left.
	consumers.Wait()
	close(stopBatcher)
	<-batcherDone
	if err := context.Cause(consumeCtx); !errors.Is(err, context.Canceled) || ctx.Err() == nil {
		return err
	}
	return nil
}

// Run serves app's partition until ctx ends or the partition is taken over
// (then it returns eventstore.ErrFenced), starting again a second after
// any other failure (the broker unreachable, say).
func (w *Writer) Run(ctx context.Context, app *eventstore.Appender, onAppend func([]eventstore.Stored)) error {
	failures := 0
	for {
		err := w.Serve(ctx, app, onAppend)
		if ctx.Err() != nil || errors.Is(err, eventstore.ErrFenced) {
			return err
		}
		failures++
		if failures == 1 || failures%60 == 0 {
			w.log.Error("event store writer stopped consuming; retrying every second", "partition", app.Partition(), "attempts", failures, "err", err)
		}
		_ = pause.For(ctx, time.Second)
	}
}

// partitionWriter is the batching of one partition.
type partitionWriter struct {
	w        *Writer
	app      *eventstore.Appender
	onAppend func([]eventstore.Stored)
	in       chan *pending
}

// chain composes Watermill's middleware around handle: a panic becomes an
// error, transient errors are retried with backoff (well under the broker's
// consumer timeout), and what can never succeed is parked with its reason.
func (w *Writer) chain(dead message.Publisher, handle message.HandlerFunc) (message.HandlerFunc, error) {
	poison, err := middleware.PoisonQueueWithFilter(dead, broker.DeadTopic, permanent)
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{
		MaxRetries:      5,
		InitialInterval: 100 * time.Millisecond,
		MaxInterval:     2 * time.Second,
		Multiplier:      2,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !permanent(p.Err) && !errors.Is(p.Err, eventstore.ErrFenced)
		},
	}
	h := middleware.Recoverer(handle)
	h = retry.Middleware(h)
	h = poison(h)
	return h, nil
}

// permanent reports errors that no retry can cure.
func permanent(err error) bool {
	var panicked middleware.RecoveredPanicError
	return errors.Is(err, events.ErrUndecodable) || errors.Is(err, ErrConflict) || errors.As(err, &panicked)
}

// ConsumersPerPartition is how many broker subscriptions each partition's
// writer gets when total are shared among the partitions: its share, and
// at least 8. What a process's partitions hold unacknowledged while an
// append commits makes its next append transaction, so the total, not the
// partition count, sizes the transactions; a partition's own few keep its
// queue flowing.
func ConsumersPerPartition(total, partitions int) int {
	return max(8, total/max(partitions, 1))
}

// subscriptionsPerConnection spreads the subscriptions over several AMQP
// connections: each connection has one reader and one writer goroutine,
// which at thousands of deliveries and acks a second become a bottleneck.
const subscriptionsPerConnection = 32

// returnDelay is how long a consumer holds a message whose append failed
// for a transient reason before it gives it back to the queue (at once on
// shutdown): well under the broker's consumer timeout.
const returnDelay = 30 * time.Second

// Batching: how long the batcher waits for one more record, and in all.
const (
	lingerGap = 300 * time.Microsecond
	maxLinger = 3 * time.Millisecond
)
