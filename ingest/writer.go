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
	// Prefetch is how many broker messages each partition's writer holds
	// unacknowledged: what arrives while an append commits makes the next
	// one, so this is also the partition's largest batch, in messages.
	Prefetch int
	// MaxBatchBytes bounds the payload bytes of a partition's batch and of
	// one append transaction (its one INSERT), well under
	// max_allowed_packet (16 MiB on MariaDB by default).
	MaxBatchBytes int
	// AMQPURL names the broker's nodes; Names its queues.
	AMQPURL string
	Names   broker.Names
	// AMQP is the Watermill configuration to park with.
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
// own consumer, batches and positions; the batches of the partitions that
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

// delivery is one broker message on its way into a batch: the records it
// holds, and the lines of it that cannot be read.
type delivery struct {
	tag  uint64
	id   string
	recs []events.Record
	raws [][]byte
	bad  []parked
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
// over (eventstore.ErrFenced): it consumes the partition's queue on one
// channel and appends in batches, acknowledging each batch's messages in
// one frame once it is committed. When ctx ends it stops consuming and
// finishes the messages in hand (their batches commit and they are
// acknowledged); on a failure, what it holds goes back to the queue.
// onAppend (optional) is called after every commit that stored something,
// with the events stored, in position order.
func (w *Writer) Serve(ctx context.Context, app *eventstore.Appender, onAppend func([]eventstore.Stored)) error {
	if _, err := w.deadPublisher(); err != nil {
		return err
	}
	c, err := broker.Consume(ctx, broker.ConsumerOptions{
		URLs: w.cfg.AMQPURL, Queue: w.cfg.Names.StoreQueue(app.Partition()), Prefetch: w.cfg.Prefetch,
		Name: fmt.Sprintf("chat writer %s partition %d", w.cfg.Names.Exchange, app.Partition()),
	})
	if err != nil {
		return err
	}
	// Closing gives back to the queue whatever is not acknowledged.
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Stop)
	defer stop()

	part := partitionWriter{w: w, app: app, onAppend: onAppend, in: make(chan *delivery, w.cfg.Prefetch)}
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		part.read(c.Deliveries(), quit)
	}()
	err = part.write(ctx, c.Ack)
	close(quit)
	<-readerDone
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	// The deliveries stopped without Stop: the broker closed the channel
	// or cancelled the consumer (its queue deleted, say).
	if err := c.Err(); err != nil {
		return fmt.Errorf("consume partition %d: %w", app.Partition(), err)
	}
	return fmt.Errorf("consume partition %d: the broker cancelled the consumer", app.Partition())
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
	in       chan *delivery
}

// PrefetchPerPartition is how many unacknowledged messages each
// partition's writer holds when total are shared among the partitions: its
// share, and at least 8. What a process's partitions hold while an append
// commits makes its next append transaction, so the total, not the
// partition count, sizes the transactions.
func PrefetchPerPartition(total, partitions int) int {
	return max(8, total/max(partitions, 1))
}

// A batch whose append failed for a transient reason is tried again after
// each of these pauses; then its messages are held a while before they go
// back to the queue (at once on shutdown). Each return spends one of the
// queue's deliveries: holding them first spaces the returns, so the
// delivery limit outlasts hours of outage. The hold is well under the
// broker's consumer timeout.
var appendRetries = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}

const returnDelay = 30 * time.Second

// Batching: how long the batcher waits for one more message, and in all.
const (
	lingerGap = 300 * time.Microsecond
	maxLinger = 3 * time.Millisecond
)
