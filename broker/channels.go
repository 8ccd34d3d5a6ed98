package broker

import (
	"errors"
	"fmt"
	"sync"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrRefused (with ErrNotConfirmed) means the broker answered a publish with
// a negative confirm: the queue refused it, as a store queue at its length
// bound does (reject-publish overflow). The event was not stored.
var ErrRefused = errors.New("the broker refused the event: its queue is full")

// channels is a pool of AMQP channels in confirm mode over one connection,
// which Watermill's connection wrapper keeps and reconnects. A channel is
// held only to send a publish; its confirm is awaited apart, so one channel
// carries many publishes awaiting their confirms, where Watermill's own
// publisher holds a channel until its one confirm comes back.
type channels struct {
	conn *wamqp.ConnectionWrapper
	pool chan *amqp.Channel // nil: open a new channel when taken
}

func newChannels(conn *wamqp.ConnectionWrapper, size int) *channels {
	c := &channels{conn: conn, pool: make(chan *amqp.Channel, size)}
	for range size {
		c.pool <- nil
	}
	return c
}

// confirmation is a publish that was sent, with the channel it went on.
type confirmation struct {
	*amqp.DeferredConfirmation
	ch *amqp.Channel
}

// refused reports whether a confirmation that is done was a negative
// confirm of the broker's. A channel that closed also leaves its publishes
// unacknowledged, but then it is closed before they are released, so such a
// publish is not reported refused: whether the broker has it is unknown.
func (c confirmation) refused() bool { return !c.Acked() && !c.ch.IsClosed() }

// publish sends p on a channel of the pool. An error wraps ErrNotSent when
// nothing was sent.
func (c *channels) publish(exchange, key string, p amqp.Publishing) (confirmation, error) {
	ch := <-c.pool
	defer func() { c.pool <- ch }()
	if ch == nil || ch.IsClosed() {
		var err error
		if ch, err = c.open(); err != nil {
			return confirmation{}, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
	}
	dc, err := ch.PublishWithDeferredConfirm(exchange, key, false, false, p)
	if err != nil {
		if errors.Is(err, amqp.ErrClosed) {
			ch = nil
			return confirmation{}, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		return confirmation{}, err
	}
	return confirmation{dc, ch}, nil
}

// open opens a channel in confirm mode on the current connection.
func (c *channels) open() (*amqp.Channel, error) {
	if !c.conn.IsConnected() {
		return nil, errors.New("not connected")
	}
	ch, err := c.conn.Connection().Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, err
	}
	return ch, nil
}

// close closes the pool's channels; publishes must have ended.
func (c *channels) close() {
	var wg sync.WaitGroup
	for range cap(c.pool) {
		if ch := <-c.pool; ch != nil {
			wg.Go(func() { _ = ch.Close() })
		}
	}
	wg.Wait()
}
