package broker

import (
	"context"
	"errors"
	"fmt"
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

// Publisher publishes event records and returns once the broker confirmed.
type Publisher struct {
	pub     *wamqp.Publisher
	names   Names
	timeout time.Duration
	latency *prometheus.HistogramVec
}

// NewPublisher connects to the broker. names say which partition's queue a
// record goes to; timeout bounds the wait for a confirm.
func NewPublisher(cfg wamqp.Config, names Names, logger watermill.LoggerAdapter, timeout time.Duration, reg prometheus.Registerer) (*Publisher, error) {
	pub, err := wamqp.NewPublisher(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("connect publisher to RabbitMQ: %w", err)
	}
	p := &Publisher{
		pub:     pub,
		names:   names,
		timeout: timeout,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chat_publish_seconds",
			Help:    "Time from publish to broker confirm, by outcome (confirmed, failed, timeout, abandoned).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(p.latency)
	}
	return p, nil
}

// Publish sends one record and waits for the broker's confirm. The publish
// itself runs detached from ctx's cancellation, so a client that hangs up
// cannot cut a publish in half; ctx's deadline and the publisher's timeout
// only bound how long the caller waits.
func (p *Publisher) Publish(ctx context.Context, r events.Record) error {
	if !p.pub.IsConnected() {
		p.latency.WithLabelValues("failed").Observe(0)
		return fmt.Errorf("%w: %w", ErrNotConfirmed, ErrNotSent)
	}
	start := time.Now()
	msg := ToMessage(r)
	msg.SetContext(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	// The goroutine ends when the broker confirms or the channel closes; the
	// caller's concurrency limit bounds how many can wait at once.
	go func() { done <- p.pub.Publish(p.names.TopicFor(r), msg) }()

	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			p.latency.WithLabelValues("failed").Observe(time.Since(start).Seconds())
			return fmt.Errorf("%w: %w", ErrNotConfirmed, err)
		}
		p.latency.WithLabelValues("confirmed").Observe(time.Since(start).Seconds())
		return nil
	case <-timer.C:
	case <-ctx.Done():
		// The caller stopped waiting (a client that hung up); the publish
		// itself goes on and may still be confirmed.
		p.latency.WithLabelValues("abandoned").Observe(time.Since(start).Seconds())
		return fmt.Errorf("%w: caller gone before the confirm: %w", ErrNotConfirmed, context.Cause(ctx))
	}
	p.latency.WithLabelValues("timeout").Observe(time.Since(start).Seconds())
	return fmt.Errorf("%w: no confirm within %s", ErrNotConfirmed, time.Since(start).Round(time.Millisecond))
}

// Connected reports whether the publisher holds a live broker connection.
func (p *Publisher) Connected() bool { return p.pub.IsConnected() }

// Ping reports, as a readiness check, whether the publisher holds a live
// broker connection.
func (p *Publisher) Ping(context.Context) error {
	if !p.Connected() {
		return ErrNotSent
	}
	return nil
}

// Close waits for publishes in flight and closes the connection.
func (p *Publisher) Close() error { return p.pub.Close() }
