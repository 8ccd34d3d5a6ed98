// Package broker carries event records over RabbitMQ through Watermill: the
// topology, the Watermill configuration, and the mapping between records and
// Watermill messages.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/partition"
)

// Topics (Watermill's word) are AMQP routing keys on the namespace's one
// topic exchange: "event.<partition>.<Type>" for events, "dead.<consumer>"
// for parked ones.
const (
	eventTopicPrefix = "event."
	deadTopicPrefix  = "dead."
	// DeadTopic is where the event store writer parks what it cannot store.
	DeadTopic = "dead.eventstore"
)

// Metadata keys of an event message. correlation_id is Watermill's own key,
// so its CorrelationID middleware carries it onto messages we publish.
const (
	keyType          = "event_type"
	keySchemaVersion = "schema_version"
	keyStreamID      = "stream_id"
	keyStreamVersion = "stream_version"
	keyOccurredAt    = "occurred_at"
	keyCorrelationID = "correlation_id"
)

// Names are the AMQP object names of one namespace.
type Names struct {
	Exchange string
	// Partitions is how many partitions the event log has: each has its
	// own queue.
	Partitions int
	Store      string // partition 0's queue
	DeadStore  string // where undecodable or conflicting events are parked
	// Classic names the queues that exist as classic queues, declared before
	// the queues were quorum queues: they are used as they are (a queue
	// redeclared with other arguments is refused) until `chat migrate`
	// converts them.
	Classic map[string]bool

	catalog catalog.Catalog
}

// NamesFor returns the object names of a namespace with partitions
// partitions.
func NamesFor(namespace string, partitions int) Names {
	c := catalog.New(namespace)
	return Names{Exchange: c.Exchange(), Partitions: max(partitions, 1), Store: c.StoreQueue(0), DeadStore: c.DeadQueue(), catalog: c}
}

// StoreQueue is the queue of a partition.
func (n Names) StoreQueue(partition int) string { return n.catalog.StoreQueue(partition) }

// StoreQueues are the queues of every partition, by partition.
func (n Names) StoreQueues() []string {
	out := make([]string, n.Partitions)
	for p := range out {
		out[p] = n.StoreQueue(p)
	}
	return out
}

// PartitionOf is the partition a record belongs to: its application's.
func (n Names) PartitionOf(r events.Record) int {
	return partition.Of(events.TokenOf(r.StreamID), n.Partitions)
}

// TopicFor is the topic (routing key) a record is published under: its
// partition's.
func (n Names) TopicFor(r events.Record) string {
	return eventTopicPrefix + strconv.Itoa(n.PartitionOf(r)) + "." + r.Type
}

// PartitionTopic is what the writer of a partition subscribes to: every
// event of the partition.
func PartitionTopic(partition int) string {
	return eventTopicPrefix + strconv.Itoa(partition) + ".*"
}

// DeliveryLimit is how often the store queue delivers a message before it
// dead-letters it into the dead queue. The writer retries a transient
// failure for about 3 s and then holds the message 30 s before it gives it
// back, so this outlasts about four hours of failing appends, while a
// message that fails every time (or crashes its consumer) ends parked
// instead of looping for ever.
const DeliveryLimit = 500

// QueueArgs are the arguments queue is declared with: every queue is a
// quorum queue, replicated over the cluster's nodes, so that a confirmed
// message survives the loss of a node (a quorum queue confirms a publish
// once a majority of its replicas holds it). The store queue dead-letters a
// message after DeliveryLimit deliveries into the dead queue, at least once
// (a dead-lettered message leaves the store queue only when the dead queue
// confirmed it; that strategy needs reject-publish overflow). A classic
// queue is declared with none.
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
	}
	return args
}

func (n Names) isStore(queue string) bool {
	return queue != n.DeadStore && strings.HasPrefix(queue, n.Store)
}

// queueFor is the queue a subscription to topic consumes: a partition's, or
// the dead queue.
func (n Names) queueFor(topic string) string {
	if strings.HasPrefix(topic, deadTopicPrefix) {
		return n.DeadStore
	}
	p, _, _ := strings.Cut(strings.TrimPrefix(topic, eventTopicPrefix), ".")
	i, err := strconv.Atoi(p)
	if err != nil {
		return n.Store
	}
	return n.StoreQueue(i)
}

func bindingFor(topic string) string {
	if strings.HasPrefix(topic, deadTopicPrefix) {
		return deadTopicPrefix + "#"
	}
	return topic
}

// WatermillConfig is the one AMQP configuration of publishers and
// subscribers: a durable topic exchange, durable queues, persistent
// delivery, publisher confirms over a pool of channels, bounded prefetch.
// amqpURLs may name several nodes of one cluster (ParseNodes); each
// connection, and each reconnect, goes to the next node that answers.
func WatermillConfig(amqpURLs string, names Names, publishChannels int, prefetch int) (wamqp.Config, error) {
	nodes, err := ParseNodes(amqpURLs)
	if err != nil {
		return wamqp.Config{}, err
	}
	dialCfg := nodes.Config(5*time.Second, nil)
	return wamqp.Config{
		Connection: wamqp.ConnectionConfig{
			AmqpURI:    nodes.URI(),
			AmqpConfig: &dialCfg,
			Reconnect: &wamqp.ReconnectConfig{
				BackoffInitialInterval:     100 * time.Millisecond,
				BackoffRandomizationFactor: 0.5,
				BackoffMultiplier:          1.5,
				BackoffMaxInterval:         5 * time.Second,
			},
		},
		Marshaler: marshaler{},
		Exchange: wamqp.ExchangeConfig{
			GenerateName: func(string) string { return names.Exchange },
			Type:         "topic",
			Durable:      true,
		},
		// Watermill's subscriber declares only the store queue (the dead
		// queue is declared by DeclareTopology), with these arguments.
		Queue: wamqp.QueueConfig{
			GenerateName: names.queueFor,
			Durable:      true,
			Arguments:    names.QueueArgs(names.Store),
		},
		QueueBind: wamqp.QueueBindConfig{GenerateRoutingKey: bindingFor},
		Publish: wamqp.PublishConfig{
			GenerateRoutingKey: func(topic string) string { return topic },
			ConfirmDelivery:    true,
			ChannelPoolSize:    publishChannels,
		},
		Consume: wamqp.ConsumeConfig{
			Qos: wamqp.QosConfig{PrefetchCount: prefetch},
		},
		TopologyBuilder: &wamqp.DefaultTopologyBuilder{},
	}, nil
}

// DeclareTopology declares the exchange, every queue and their bindings, so
// that no publish is ever unroutable: a confirmed but unroutable message is
// dropped by the broker. A queue that exists as a classic queue is kept as it
// is; the names returned say which, for the subscribers to declare it alike.
func DeclareTopology(ctx context.Context, amqpURLs string, names Names) (Names, error) {
	return declareTopology(ctx, amqpURLs, names, false)
}

// ConvertQueues declares the topology like DeclareTopology, but first
// deletes each classic queue that is empty and has no consumer, so that it
// is declared again as a quorum queue. A queue that holds messages or has a
// consumer stays classic (names.Classic says which). Nothing may publish
// while it runs: between the delete and the declare a publish has no queue
// and is dropped.
func ConvertQueues(ctx context.Context, amqpURLs string, names Names) (Names, error) {
	return declareTopology(ctx, amqpURLs, names, true)
}

func declareTopology(ctx context.Context, amqpURLs string, names Names, convert bool) (Names, error) {
	conn, err := dialNodes(ctx, amqpURLs, "chat topology")
	if err != nil {
		return names, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return names, fmt.Errorf("open channel: %w", err)
	}
	defer func() { ch.Close() }()
	if err := ch.ExchangeDeclare(names.Exchange, "topic", true, false, false, false, nil); err != nil {
		return names, fmt.Errorf("declare exchange %s: %w", names.Exchange, err)
	}
	names.Classic = map[string]bool{}
	type queue struct{ name, key string }
	queues := []queue{{names.DeadStore, bindingFor(DeadTopic)}}
	for p, q := range names.StoreQueues() {
		queues = append(queues, queue{q, PartitionTopic(p)})
	}
	if names.Partitions == 1 {
		// A log of one partition also takes the routing keys of releases
		// before partitions (event.<Type>), which may still be publishing
		// while the processes are upgraded.
		queues = append(queues, queue{names.Store, eventTopicPrefix + "#"})
	}
	for _, q := range queues {
		_, err := ch.QueueDeclare(q.name, true, false, false, false, names.QueueArgs(q.name))
		if IsPreconditionFailed(err) {
			// The queue exists with other arguments: a classic queue of an
			// older release. A failed declare closes the channel.
			if ch, err = conn.Channel(); err != nil {
				return names, fmt.Errorf("open channel: %w", err)
			}
			err = declareClassic(ch, q.name, convert, names.QueueArgs(q.name))
			if errors.Is(err, errStillClassic) {
				names.Classic[q.name] = true
				ch.Close()
				if ch, err = conn.Channel(); err != nil {
					return names, fmt.Errorf("open channel: %w", err)
				}
				_, err = ch.QueueDeclare(q.name, true, false, false, false, nil)
			}
		}
		if err != nil {
			return names, fmt.Errorf("declare queue %s: %w", q.name, err)
		}
		if err := ch.QueueBind(q.name, q.key, names.Exchange, false, nil); err != nil {
			return names, fmt.Errorf("bind queue %s: %w", q.name, err)
		}
	}
	return names, ctx.Err()
}

var errStillClassic = errors.New("the queue stays classic")

// declareClassic deals with a queue that exists with other arguments than
// quorum ones: unless converting, or when it is in use, it stays as it is.
func declareClassic(ch *amqp.Channel, queue string, convert bool, args amqp.Table) error {
	if !convert {
		return errStillClassic
	}
	// ifUnused and ifEmpty make the delete refuse (406) a queue with a
	// consumer or a message, atomically.
	if _, err := ch.QueueDelete(queue, true, true, false); err != nil {
		if IsPreconditionFailed(err) {
			return errStillClassic
		}
		return fmt.Errorf("delete classic queue %s: %w", queue, err)
	}
	_, err := ch.QueueDeclare(queue, true, false, false, false, args)
	return err
}

// IsPreconditionFailed reports a channel exception PRECONDITION_FAILED
// (406): an object declared again with other properties or arguments.
func IsPreconditionFailed(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed
}

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
	conn, err := nodes.Dial(timeout, props)
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

// DeleteTopology removes a namespace's exchange and queues (tests use it).
// A queue it cannot delete does not stop it: it goes on with the others,
// on a new channel (a failed delete closes the channel), and reports every
// failure.
func DeleteTopology(amqpURLs string, names Names) error {
	conn, err := Dial(context.Background(), amqpURLs, "chat topology")
	if err != nil {
		return err
	}
	defer conn.Close()
	var (
		ch   *amqp.Channel
		errs []error
	)
	del := func(what string, fn func(*amqp.Channel) error) {
		if ch == nil || ch.IsClosed() {
			if ch, err = conn.Channel(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
				ch = nil
				return
			}
		}
		if err := fn(ch); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	for _, q := range append(names.StoreQueues(), names.DeadStore) {
		del("queue "+q, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
	}
	del("exchange "+names.Exchange, func(ch *amqp.Channel) error { return ch.ExchangeDelete(names.Exchange, false, false) })
	if ch != nil {
		ch.Close()
	}
	return errors.Join(errs...)
}

// ToMessage maps a record onto a Watermill message: the event id is the
// message UUID, envelope facts travel as metadata, the payload as the body.
func ToMessage(r events.Record) *message.Message {
	msg := message.NewMessage(r.EventID.String(), r.Data)
	msg.Metadata.Set(keyType, r.Type)
	msg.Metadata.Set(keySchemaVersion, strconv.Itoa(r.SchemaVersion))
	msg.Metadata.Set(keyStreamID, r.StreamID)
	msg.Metadata.Set(keyStreamVersion, strconv.FormatInt(r.StreamVersion, 10))
	msg.Metadata.Set(keyOccurredAt, r.OccurredAt.UTC().Format(time.RFC3339Nano))
	if r.CorrelationID != "" {
		msg.Metadata.Set(keyCorrelationID, r.CorrelationID)
	}
	return msg
}

// FromMessage reads a record back from a Watermill message. Errors wrap
// events.ErrUndecodable: a message that fails here never will succeed.
func FromMessage(msg *message.Message) (events.Record, error) {
	bad := func(format string, args ...any) (events.Record, error) {
		return events.Record{}, fmt.Errorf("%w: %s", events.ErrUndecodable, fmt.Sprintf(format, args...))
	}
	id, err := uuid.Parse(msg.UUID)
	if err != nil {
		return bad("message id %q is not a UUID", msg.UUID)
	}
	sv, err := strconv.Atoi(msg.Metadata.Get(keySchemaVersion))
	if err != nil {
		return bad("schema_version %q", msg.Metadata.Get(keySchemaVersion))
	}
	ver, err := strconv.ParseInt(msg.Metadata.Get(keyStreamVersion), 10, 64)
	if err != nil {
		return bad("stream_version %q", msg.Metadata.Get(keyStreamVersion))
	}
	at, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(keyOccurredAt))
	if err != nil {
		return bad("occurred_at %q", msg.Metadata.Get(keyOccurredAt))
	}
	r := events.Record{
		EventID:       id,
		Type:          msg.Metadata.Get(keyType),
		SchemaVersion: sv,
		StreamID:      msg.Metadata.Get(keyStreamID),
		StreamVersion: ver,
		OccurredAt:    at.UTC(),
		CorrelationID: msg.Metadata.Get(keyCorrelationID),
		Data:          msg.Payload,
	}
	if r.Type == "" || r.StreamID == "" {
		return bad("event_type or stream_id missing")
	}
	return r, nil
}

// marshaler is Watermill's default mapping made total: a header that is not
// a string (from a foreign publisher) is rendered as text instead of failing,
// because a failed unmarshal is nacked and redelivered forever, before any
// handler could park it.
type marshaler struct{}

func (marshaler) Marshal(msg *message.Message) (amqp.Publishing, error) {
	p, err := wamqp.DefaultMarshaler{}.Marshal(msg)
	if err != nil {
		return p, err
	}
	p.ContentType = "application/json"
	p.MessageId = msg.UUID
	return p, nil
}

func (marshaler) Unmarshal(d amqp.Delivery) (*message.Message, error) {
	id, _ := d.Headers[wamqp.DefaultMessageUUIDHeaderKey].(string)
	if id == "" {
		id = d.MessageId
	}
	msg := message.NewMessage(id, d.Body)
	for k, v := range d.Headers {
		if k == wamqp.DefaultMessageUUIDHeaderKey {
			continue
		}
		if s, ok := v.(string); ok {
			msg.Metadata.Set(k, s)
		} else {
			msg.Metadata.Set(k, fmt.Sprint(v))
		}
	}
	return msg, nil
}

// Logger adapts slog to Watermill. Watermill logs every subscription's
// start at info, which is noise at our consumer counts, so info becomes debug.
func Logger(l *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
}
