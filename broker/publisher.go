package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/events"
)

// ErrNotConfirmed means the broker did not confirm a publish, in time or at
// all: the event may or may not have been stored.
var ErrNotConfirmed = errors.New("publish not confirmed by the broker")

// ErrNotSent (with ErrNotConfirmed) means the event was certainly not
// stored: there was no broker connection to send it on.
var ErrNotSent = errors.New("no broker connection; the event was not sent")

// PublisherConfig sizes a Publisher.
type PublisherConfig struct {
	// Timeout bounds a caller's wait for the confirm of its event, and each
	// batch message's wait for its own: one the broker leaves unconfirmed
	// does not hold up the partition's next ones longer than that.
	Timeout time.Duration
	// Channels is how many AMQP channels send at once (8 when 0); each
	// carries many batch messages awaiting their confirms.
	Channels int
	// InFlight is how many batch messages of one partition may await their
	// confirms at once (2 when 0); what arrives meanwhile waits and goes in
	// the next one.
	InFlight int
	// Slots is how many batch messages may await their confirms at once
	// over all the partitions (4 when 0): when the load is spread over
	// many partitions, each waits its turn and sends more per message.
	Slots int
	// MaxBatchBytes bounds the payload of one batch message (1 MiB when 0);
	// a record larger than that travels alone.
	MaxBatchBytes int
}

// Publisher publishes event records and returns once the broker confirmed
// them. The records of one partition that arrive while that partition's
// earlier publishes await their confirms travel together, in one batch
// message: so a busy partition pays one broker message, one confirm and one
// delivery for many events, and an idle one sends each event at once.
type Publisher struct {
	conn  *wamqp.ConnectionWrapper
	chans *channels
	names Names
	cfg   PublisherConfig
	lanes []*lane
	slots dispatcher
	sends sync.WaitGroup
	close sync.Once

	latency *prometheus.HistogramVec
	batch   prometheus.Histogram
}

// NewPublisher connects to the broker. names say which partition's queue a
// record goes to.
func NewPublisher(amqp wamqp.Config, names Names, logger watermill.LoggerAdapter, cfg PublisherConfig, reg prometheus.Registerer) (*Publisher, error) {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 2
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 4
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 1 << 20
	}
	if cfg.Channels <= 0 {
		cfg.Channels = 8
	}
	conn, err := wamqp.NewConnection(amqp.Connection, logger)
	if err != nil {
		return nil, fmt.Errorf("connect publisher to RabbitMQ: %w", err)
	}
	p := &Publisher{
		conn:  conn,
		chans: newChannels(conn, cfg.Channels),
		names: names,
		cfg:   cfg,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chat_publish_seconds",
			Help:    "Time from publish to broker confirm, by outcome (confirmed, refused: the partition's queue is full, failed, timeout, abandoned).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"outcome"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chat_publish_batch_events",
			Help:    "Events per broker message published.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
	}
	p.slots.free = cfg.Slots
	p.lanes = make([]*lane, names.Partitions)
	for i := range p.lanes {
		p.lanes[i] = &lane{p: p, topic: eventTopicPrefix + strconv.Itoa(i) + ".Events", partition: i}
	}
	if reg != nil {
		reg.MustRegister(p.latency, p.batch)
	}
	return p, nil
}

// Publish sends one record and waits for the broker's confirm of the batch
// message that carries it. The publish runs detached from ctx's
// cancellation, so a client that hangs up cannot cut a publish in half.
// ctx's deadline and the publisher's timeout bound how long the caller
// waits, and when the record may be sent: one still waiting for its batch
// then is never sent (and the error wraps ErrNotSent), so that whoever
// reserved its number knows that nothing of it reaches the broker later.
func (p *Publisher) Publish(ctx context.Context, r events.Record) error {
	if !p.conn.IsConnected() {
		p.latency.WithLabelValues("failed").Observe(0)
		return fmt.Errorf("%w: %w", ErrNotConfirmed, ErrNotSent)
	}
	start := time.Now()
	item := &publishing{rec: r, done: make(chan error, 1), sendBy: start.Add(p.cfg.Timeout)}
	if d, ok := ctx.Deadline(); ok && d.Before(item.sendBy) {
		item.sendBy = d
	}
	l := p.lanes[p.names.PartitionOf(r)]
	l.add(item)

	timer := time.NewTimer(p.cfg.Timeout)
	defer timer.Stop()
	select {
	case err := <-item.done:
		if err != nil {
			outcome := "failed"
			if errors.Is(err, ErrRefused) {
				outcome = "refused"
			}
			p.latency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
			return fmt.Errorf("%w: %w", ErrNotConfirmed, err)
		}
		p.latency.WithLabelValues("confirmed").Observe(time.Since(start).Seconds())
		return nil
	case <-timer.C:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			break // the caller's own bound: a timeout like the publisher's
		}
		// The caller stopped waiting (a client that hung up); the publish
		// itself goes on and may still be confirmed.
		p.latency.WithLabelValues("abandoned").Observe(time.Since(start).Seconds())
		return fmt.Errorf("%w: caller gone before the confirm: %w", ErrNotConfirmed, context.Cause(ctx))
	}
	if l.withdraw(item) {
		// Still waiting for its batch: it is certainly not sent now.
		p.latency.WithLabelValues("failed").Observe(time.Since(start).Seconds())
		return fmt.Errorf("%w: %w", ErrNotConfirmed, errSendDeadline)
	}
	p.latency.WithLabelValues("timeout").Observe(time.Since(start).Seconds())
	return fmt.Errorf("%w: no confirm within %s", ErrNotConfirmed, time.Since(start).Round(time.Millisecond))
}

// publishing is a record waiting for its batch's confirm.
type publishing struct {
	rec    events.Record
	sendBy time.Time  // not sent after this
	done   chan error // buffered: the sender never waits for the caller
}

// publishBatch sends the batch's records in one message and waits, at most
// the publisher's timeout, for the broker's confirm.
func (p *Publisher) publishBatch(topic string, batch []*publishing) error {
	recs := make([]events.Record, len(batch))
	for i, item := range batch {
		recs[i] = item.rec
	}
	msg, err := BatchMessage(recs)
	if err != nil {
		return err
	}
	pub, err := marshaler{}.Marshal(msg)
	if err != nil {
		return err
	}
	p.batch.Observe(float64(len(recs)))
	c, err := p.chans.publish(p.names.Exchange, topic, pub)
	if err != nil {
		return err
	}
	timer := time.NewTimer(p.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-c.Done():
	case <-timer.C:
		return fmt.Errorf("no confirm within %s", p.cfg.Timeout)
	}
	switch {
	case c.Acked():
		return nil
	case c.refused():
		return ErrRefused
	}
	return errors.New("the channel closed before the broker confirmed")
}

// backlogWindow is how long after a refusal Backlog reports a partition.
const backlogWindow = 10 * time.Second

// Backlog reports, as a readiness check, the partitions whose queues
// refused a publish in the last 10 s because they were full: commands of
// their applications answer 503 while the event store's writer catches up.
func (p *Publisher) Backlog(context.Context) error {
	var full []string
	since := time.Now().Add(-backlogWindow).UnixNano()
	for _, l := range p.lanes {
		if l.refusedAt.Load() > since {
			full = append(full, strconv.Itoa(l.partition))
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("the queues of partitions %s were full in the last %s: their writers are behind, and commands to their applications answer 503", strings.Join(full, ", "), backlogWindow)
	}
	return nil
}

// Connected reports whether the publisher holds a live broker connection.
func (p *Publisher) Connected() bool { return p.conn.IsConnected() }

// Ping reports, as a readiness check, whether the publisher holds a live
// broker connection.
func (p *Publisher) Ping(context.Context) error {
	if !p.Connected() {
		return ErrNotSent
	}
	return nil
}

// Close waits for the publishes in flight and closes the connection.
func (p *Publisher) Close() error {
	var err error
	p.close.Do(func() {
		p.sends.Wait()
		p.chans.close()
		err = p.conn.Close()
	})
	return err
}
