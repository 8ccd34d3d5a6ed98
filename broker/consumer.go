package broker

import (
	"context"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Consumer takes a queue's messages over one AMQP channel of its own
// connection, with manual acknowledgements: many messages in hand at once
// (the prefetch), all of them acknowledged by one frame. The broker pays
// for a channel's deliveries and acks per frame, so one channel that acks
// a batch at a time costs it far less than many channels that each ack one
// message at a time.
type Consumer struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	tag        string
	deliveries <-chan amqp.Delivery
	closed     chan *amqp.Error
	stopOnce   sync.Once
}

// ConsumerOptions says what a Consumer takes and how much it holds.
type ConsumerOptions struct {
	// URLs names the broker's nodes (ParseNodes); the first that answers
	// is used.
	URLs  string
	Queue string
	// Prefetch is how many unacknowledged messages the broker lets the
	// consumer hold.
	Prefetch int
	// Name names the connection in RabbitMQ's management UI.
	Name string
}

// Consume connects and starts consuming. The connection has a short
// heartbeat (Heartbeat), so that the broker soon gives the messages of a
// consumer that stopped answering to another.
func Consume(ctx context.Context, o ConsumerOptions) (*Consumer, error) {
	conn, err := dialHeartbeat(ctx, o.URLs, o.Name, Heartbeat)
	if err != nil {
		return nil, err
	}
	c := &Consumer{conn: conn, tag: o.Name}
	if err := c.start(o); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *Consumer) start(o ConsumerOptions) error {
	var err error
	if c.ch, err = c.conn.Channel(); err != nil {
		return fmt.Errorf("open a channel: %w", err)
	}
	c.closed = c.ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := c.ch.Qos(o.Prefetch, 0, false); err != nil {
		return fmt.Errorf("set the prefetch: %w", err)
	}
	if c.deliveries, err = c.ch.Consume(o.Queue, c.tag, false, false, false, false, nil); err != nil {
		return fmt.Errorf("consume %s: %w", o.Queue, err)
	}
	return nil
}

// Deliveries are the messages as they come. The channel closes after Stop,
// once every message the broker sent before it is received, or at once
// when the connection or the channel closes (Err says why).
func (c *Consumer) Deliveries() <-chan amqp.Delivery { return c.deliveries }

// Ack acknowledges every message up to and including tag, in one frame.
func (c *Consumer) Ack(tag uint64) error {
	return c.ch.Ack(tag, true)
}

// Stop asks the broker to send no more. It waits for the broker's answer,
// so that no message sent before it is lost on the way.
func (c *Consumer) Stop() {
	c.stopOnce.Do(func() { _ = c.ch.Cancel(c.tag, false) })
}

// Err is why the deliveries stopped when Stop did not stop them: the
// channel or its connection closed. Nil while the channel is open.
func (c *Consumer) Err() error {
	if !c.ch.IsClosed() {
		return nil
	}
	select {
	case err := <-c.closed:
		if err != nil {
			return err
		}
	default:
	}
	return amqp.ErrClosed
}

// Close closes the connection: the broker gives every message not yet
// acknowledged back to its queue.
func (c *Consumer) Close() error {
	return c.conn.Close()
}
