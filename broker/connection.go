package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// QueueDepths returns how many messages wait, ready, in each of queues.
func QueueDepths(ctx context.Context, amqpURL string, queues ...string) ([]int, error) {
	stats, err := QueueStats(ctx, amqpURL, queues...)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(stats))
	for i, s := range stats {
		out[i] = s.Messages
	}
	return out, nil
}

// Dial opens a connection to the first node of amqpURLs that answers, for a
// short look at the broker (its properties, passive declares), named so that
// it can be told apart in RabbitMQ's management UI. ctx's deadline, or 5 s,
// bounds connecting and the handshake with each node; the caller bounds what
// it does afterwards.
func Dial(ctx context.Context, amqpURLs, name string) (*amqp.Connection, error) {
	return dialNodes(ctx, amqpURLs, name)
}

func dialNodes(ctx context.Context, amqpURLs, name string) (*amqp.Connection, error) {
	return dialHeartbeat(ctx, amqpURLs, name, 0)
}

// dialHeartbeat is dialNodes with a heartbeat other than the client
// library's default (0 keeps the default).
func dialHeartbeat(ctx context.Context, amqpURLs, name string, heartbeat time.Duration) (*amqp.Connection, error) {
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	nodes, err := ParseNodes(amqpURLs)
	if err != nil {
		return nil, err
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	cfg := nodes.Config(timeout, props)
	if heartbeat > 0 {
		cfg.Heartbeat = heartbeat
	}
	conn, err := amqp.DialConfig(nodes.URI(), cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	return conn, nil
}

// QueueStat is what a passive declare tells of a queue.
type QueueStat struct {
	Name      string
	Messages  int // ready for delivery (not counting those delivered and unacknowledged)
	Consumers int
}

// QueueStats reads the depth and consumers of queues over one connection.
// ctx bounds the whole of it: when it ends first, the connection is closed
// under the calls in progress.
func QueueStats(ctx context.Context, amqpURL string, queues ...string) ([]QueueStat, error) {
	conn, err := Dial(ctx, amqpURL, "chat queue stats")
	if err != nil {
		return nil, err
	}
	closeSoon := func() { _ = conn.CloseDeadline(time.Now().Add(time.Second)) }
	stop := context.AfterFunc(ctx, closeSoon)
	defer func() {
		if stop() {
			closeSoon()
		}
	}()
	ch, err := conn.Channel()
	if err != nil {
		return nil, errors.Join(ctx.Err(), err)
	}
	out := make([]QueueStat, 0, len(queues))
	for _, name := range queues {
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		if err != nil {
			return nil, errors.Join(ctx.Err(), fmt.Errorf("queue %s: %w", name, err))
		}
		out = append(out, QueueStat{Name: name, Messages: q.Messages, Consumers: q.Consumers})
	}
	return out, nil
}
