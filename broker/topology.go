package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	amqp "github.com/rabbitmq/amqp091-go"
)

// DeliveryLimit is how often the store queue delivers a message before it
// dead-letters it into the dead queue. The writer retries a transient
// failure for about 3 s and then holds the message 30 s before it gives it
// back, so this outlasts about four hours of failing appends, while a
// message that fails every time (or crashes its consumer) ends parked
// instead of looping for ever.
const DeliveryLimit = 500

// DefaultQueueBound is the most bytes of messages a partition's queue
// holds waiting for its writer (Names.QueueBound), about 20,000 events of
// short messages: at the rate one partition's writer drains on a small
// machine, a few seconds of backlog. Past it the broker refuses publishes
// to that queue, and commands of the partition's applications answer 503
// with Retry-After until the writer catches up: a read side that lags by
// seconds at most, rather than by as long as an overload lasts.
const DefaultQueueBound = 8 << 20

// QueueArgs are the arguments queue is declared with: every queue is a
// quorum queue, replicated over the cluster's nodes, so that a confirmed
// message survives the loss of a node (a quorum queue confirms a publish
// once a majority of its replicas holds it). A store queue dead-letters a
// message after DeliveryLimit deliveries into the dead queue, at least once
// (a dead-lettered message leaves the store queue only when the dead queue
// confirmed it; that strategy needs reject-publish overflow), and holds at
// most QueueBound bytes of messages waiting: past that it refuses
// publishes (reject-publish), which their publishers are told by a
// negative confirm. A queue found in the shape of an older release is
// described as it was found.
func (n Names) QueueArgs(queue string) amqp.Table {
	if n.Classic[queue] {
		return nil
	}
	args := amqp.Table{"x-queue-type": "quorum"}
	if n.isStore(queue) {
		args["x-delivery-limit"] = int64(DeliveryLimit)
		args["x-dead-letter-exchange"] = n.Exchange
		args["x-dead-letter-routing-key"] = DeadTopic
		args["x-dead-letter-strategy"] = "at-least-once"
		args["x-overflow"] = "reject-publish"
		if n.QueueBound > 0 && !n.Unbounded[queue] {
			args["x-max-length-bytes"] = n.QueueBound
		}
	}
	return args
}

func (n Names) isStore(queue string) bool {
	return queue != n.DeadStore && strings.HasPrefix(queue, n.Store)
}

// DeclareTopology declares the exchange, every queue and their bindings, so
// that no publish is ever unroutable: a confirmed but unroutable message is
// dropped by the broker. A queue that exists in the shape of an older
// release (classic, or a quorum queue without the length bound) is kept as
// it is; the names returned say which.
func DeclareTopology(ctx context.Context, amqpURLs string, names Names) (Names, error) {
	return declareTopology(ctx, amqpURLs, names, false)
}

// ConvertQueues declares the topology like DeclareTopology, but first
// deletes each queue of an older shape that is empty and has no consumer,
// so that it is declared again as this release declares it. A queue that
// holds messages or has a consumer stays as it is (the names returned say
// which). Nothing may publish while it runs: between the delete and the
// declare a publish has no queue and is dropped.
func ConvertQueues(ctx context.Context, amqpURLs string, names Names) (Names, error) {
	return declareTopology(ctx, amqpURLs, names, true)
}

func declareTopology(ctx context.Context, amqpURLs string, names Names, convert bool) (Names, error) {
	conn, err := dialNodes(ctx, amqpURLs, "chat topology")
	if err != nil {
		return names, err
	}
	defer conn.Close()
	if err := onChannel(conn, func(ch *amqp.Channel) error { return declareExchange(ch, names) }); err != nil {
		return names, fmt.Errorf("declare exchange %s: %w", names.Exchange, err)
	}
	names.Classic, names.Unbounded, names.Other = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, b := range names.bindings() {
		if err := declareQueue(conn, &names, b.queue, convert); err != nil {
			return names, err
		}
		if err := onChannel(conn, func(ch *amqp.Channel) error {
			return ch.QueueBind(b.queue, b.key, names.Exchange, false, nil)
		}); err != nil {
			return names, fmt.Errorf("bind queue %s: %w", b.queue, err)
		}
	}
	return names, ctx.Err()
}

// declareExchange declares the namespace's exchange: a durable topic
// exchange.
func declareExchange(ch *amqp.Channel, names Names) error {
	return ch.ExchangeDeclare(names.Exchange, "topic", true, false, false, false, nil)
}

// binding is a queue of the topology and a routing key it is bound with.
type binding struct{ queue, key string }

// bindings are the topology's queues and their bindings: the dead queue's
// first, then each partition's.
func (n Names) bindings() []binding {
	out := []binding{{n.DeadStore, bindingFor(DeadTopic)}}
	for p, q := range n.StoreQueues() {
		out = append(out, binding{q, PartitionTopic(p)})
	}
	if n.Partitions == 1 {
		// A log of one partition also takes the routing keys of releases
		// before partitions (event.<Type>), which may still be publishing
		// while the processes are upgraded.
		out = append(out, binding{n.Store, eventTopicPrefix + "#"})
	}
	return out
}

// Queues are the queues DeclareTopology declares: the dead queue first,
// then each partition's.
func (n Names) Queues() []string {
	var out []string
	for _, b := range n.bindings() {
		if !slices.Contains(out, b.queue) {
			out = append(out, b.queue)
		}
	}
	return out
}

// declareQueue declares a queue as this release does, unless it exists in
// an older shape: then it is noted in names and kept, or, converting, it is
// declared anew if it is empty and unused.
func declareQueue(conn *amqp.Connection, names *Names, queue string, convert bool) error {
	shape, err := InspectQueue(conn, *names, queue)
	if err != nil {
		return fmt.Errorf("declare queue %s: %w", queue, err)
	}
	switch shape {
	case ShapeMissing:
		err = onChannel(conn, func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare(queue, true, false, false, false, names.QueueArgs(queue))
			return err
		})
	case ShapeClassic, ShapeUnbounded, ShapeOther:
		converted := false
		if convert {
			if converted, err = redeclareIfIdle(conn, *names, queue, shape); err != nil {
				return err
			}
		}
		if !converted {
			names.Classic[queue] = shape == ShapeClassic
			names.Unbounded[queue] = shape == ShapeUnbounded
			names.Other[queue] = shape == ShapeOther
		}
	}
	if err != nil {
		return fmt.Errorf("declare queue %s: %w", queue, err)
	}
	return nil
}

// redeclareIfIdle deletes queue if it is empty and has no consumer, and
// declares it as this release does; false if it was in use.
func redeclareIfIdle(conn *amqp.Connection, names Names, queue string, shape Shape) (bool, error) {
	err := onChannel(conn, func(ch *amqp.Channel) error {
		if shape == ShapeClassic {
			// ifUnused and ifEmpty make the delete refuse (406) a queue
			// with a consumer or a message, atomically.
			_, err := ch.QueueDelete(queue, true, true, false)
			return err
		}
		// Quorum queues refuse those flags: look first. Nothing publishes
		// while queues are converted, and with no consumer nothing is
		// unacknowledged, so what is seen empty stays empty.
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			return err
		}
		if q.Messages > 0 || q.Consumers > 0 {
			return errInUse
		}
		_, err = ch.QueueDelete(queue, false, false, false)
		return err
	})
	if IsPreconditionFailed(err) || errors.Is(err, errInUse) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete queue %s to declare it anew: %w", queue, err)
	}
	return true, onChannel(conn, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(queue, true, false, false, false, names.QueueArgs(queue))
		return err
	})
}

var errInUse = errors.New("the queue holds messages or has a consumer")

// onChannel runs fn on a channel of its own: a refused declare closes the
// channel it was made on.
func onChannel(conn *amqp.Connection, fn func(*amqp.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer func() { _ = ch.Close() }()
	return fn(ch)
}

// IsPreconditionFailed reports a channel exception PRECONDITION_FAILED
// (406): an object declared again with other properties or arguments.
func IsPreconditionFailed(err error) bool { return isCode(err, amqp.PreconditionFailed) }

// existingQueues is the topology Watermill is given: the exchange, queues
// and bindings are declared once, when a process starts (DeclareTopology),
// so a queue is only checked to be there. Declaring it again with
// arguments would be refused for a queue kept in an older shape.
type existingQueues struct{}

func (existingQueues) ExchangeDeclare(ch *amqp.Channel, exchange string, cfg wamqp.Config) error {
	return wamqp.DefaultTopologyBuilder{}.ExchangeDeclare(ch, exchange, cfg)
}

func (existingQueues) BuildTopology(ch *amqp.Channel, queue, _ string, _ wamqp.Config, _ watermill.LoggerAdapter) error {
	if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("queue %s: %w", queue, err)
	}
	return nil
}
