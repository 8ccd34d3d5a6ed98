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
	"github.com/chatsys/chat/redact"
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

// handle stores the records of one broker message: a batch message holds
// many. A record that cannot be decoded, or that conflicts with a stored
// one, is parked alone with its reason, once the others are committed (a
// failed commit is retried before anything is parked, so that a retry does
// not park a record twice); then the message is acknowledged.
func (pw *partitionWriter) handle(msg *message.Message) ([]*message.Message, error) {
	w := pw.w
	lines := broker.Records(msg)
	p := &pending{recs: make([]events.Record, 0, len(lines)), done: make(chan struct{})}
	raws := make([][]byte, 0, len(lines))
	var bad []parked
	for _, l := range lines {
		err := l.Err
		if err == nil {
			_, err = w.codec.Decode(l.Record)
		}
		if err != nil {
			w.metrics.records.WithLabelValues("undecodable").Inc()
			w.log.Error("parking undecodable event", "message_id", msg.UUID, "correlation_id", l.Record.CorrelationID, "err", redact.Tokens(err.Error()))
			bad = append(bad, parked{l.Raw, err})
			continue
		}
		p.recs = append(p.recs, l.Record)
		raws = append(raws, l.Raw)
	}
	if len(p.recs) > 0 {
		// The batcher serves pw.in until every consumer has returned, so
		// neither send nor receive can be stranded.
		pw.in <- p
		<-p.done
		if p.err != nil {
			return nil, p.err
		}
	}
	for i, st := range p.status {
		if st != eventstore.Conflict {
			continue
		}
		r := p.recs[i]
		w.log.Error("parking conflicting event", "event_id", r.EventID, "correlation_id", r.CorrelationID, "stream_id", redact.Tokens(r.StreamID), "stream_version", r.StreamVersion)
		bad = append(bad, parked{raws[i], fmt.Errorf("%w: %s version %d", ErrConflict, r.StreamID, r.StreamVersion)})
	}
	for _, b := range bad {
		if err := pw.park(msg, b.raw, b.reason); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// parked is a record that can never be stored, and why.
type parked struct {
	raw    []byte
	reason error
}

// park publishes one record that can never be stored to the dead-letter
// queue, with the reason, as Watermill's poison queue does a whole message.
func (pw *partitionWriter) park(from *message.Message, raw []byte, reason error) error {
	dead, err := pw.w.deadPublisher()
	if err != nil {
		return err
	}
	msg := message.NewMessage(watermill.NewUUID(), raw)
	msg.Metadata.Set(middleware.ReasonForPoisonedKey, reason.Error())
	msg.Metadata.Set("message_id", from.UUID)
	if err := dead.Publish(broker.DeadTopic, msg); err != nil {
		return fmt.Errorf("park an event: %w", err)
	}
	return nil
}

// batch appends what the consumers hand over: it takes whatever is waiting
// (group commit: a batch forms while the previous one commits) and answers
// each waiter once the transaction is committed.
func (pw *partitionWriter) batch(ctx context.Context, stop <-chan struct{}, lost func(error)) {
	batch := make([]*pending, 0, pw.w.cfg.Consumers)
	for {
		batch = batch[:0]
		select {
		case p := <-pw.in:
			batch = append(batch, p)
		case <-stop:
			return
		}
		batch = pw.fill(batch)
		pw.flush(ctx, batch, lost)
	}
}

// fill adds to batch the records that keep coming, until the batch is
// full in records or bytes. It lingers while they come: the consumers
// answered by the last commit are acknowledging and taking their next
// message, and a batch that waits for them is several times larger. A lone
// record waits one gap at most, and no batch waits more than maxLinger.
func (pw *partitionWriter) fill(batch []*pending) []*pending {
	size := 0
	for _, p := range batch {
		size += p.bytes()
	}
	deadline := time.Now().Add(maxLinger)
	gap := time.NewTimer(lingerGap)
	defer gap.Stop()
	for len(batch) < cap(batch) && size < pw.w.cfg.MaxBatchBytes {
		p, ok := pw.next(gap, deadline)
		if !ok {
			break
		}
		batch = append(batch, p)
		size += p.bytes()
	}
	return batch
}

// next returns a record that is waiting or, before the deadline, one that
// arrives within a gap; false when none does.
func (pw *partitionWriter) next(gap *time.Timer, deadline time.Time) (*pending, bool) {
	select {
	case p := <-pw.in:
		return p, true
	default:
	}
	if time.Now().After(deadline) {
		return nil, false
	}
	gap.Reset(lingerGap)
	select {
	case p := <-pw.in:
		return p, true
	case <-gap.C:
		return nil, false
	}
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

func (pw *partitionWriter) flush(ctx context.Context, batch []*pending, lost func(error)) {
	w := pw.w
	var recs []events.Record
	for _, p := range batch {
		recs = append(recs, p.recs...)
	}
	// The commit must not be cut short by shutdown: finish the batch, then
	// ack. Every partition bounds it alike, since the batch may commit in
	// another partition's transaction.
	appendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	res, err := w.group.Do(appendCtx, eventstore.Batch{Appender: pw.app, Records: recs})
	cancel()
	if err != nil {
		if errors.Is(err, eventstore.ErrFenced) {
			w.log.Warn("partition taken over by another writer; stopping", "partition", pw.app.Partition(), "events", len(recs))
			lost(err)
		} else {
			w.log.Error("event store append failed", "partition", pw.app.Partition(), "events", len(recs), "err", err)
		}
		for _, p := range batch {
			p.err = err
			close(p.done)
		}
		return
	}
	status := res.Status
	counts := map[eventstore.Status]int{}
	for _, st := range status {
		counts[st]++
	}
	for _, p := range batch {
		p.status, status = status[:len(p.recs)], status[len(p.recs):]
		close(p.done)
	}
	w.metrics.records.WithLabelValues("appended").Add(float64(counts[eventstore.Appended]))
	w.metrics.records.WithLabelValues("duplicate").Add(float64(counts[eventstore.Duplicate]))
	w.metrics.records.WithLabelValues("conflict").Add(float64(counts[eventstore.Conflict]))
	if len(res.Stored) > 0 && pw.onAppend != nil {
		pw.onAppend(res.Stored)
	}
}

// bytes is the payload size of p's records.
func (p *pending) bytes() int {
	n := 0
	for _, r := range p.recs {
		n += len(r.Data)
	}
	return n
}
