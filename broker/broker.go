// Package broker carries event records over RabbitMQ: the topology (and
// what the broker holds of it), the publisher (over Watermill's connection),
// the writer's consumer, and the mapping between records and messages.
package broker

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"

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
	// QueueBound is the most bytes of messages a partition's queue holds
	// waiting (x-max-length-bytes); 0 for none.
	QueueBound int64
	// Classic names the queues that exist as classic queues, declared before
	// the queues were quorum queues, Unbounded the store queues declared
	// before they had a length bound, and Other those with other arguments
	// (another bound): they are used as they are (a queue redeclared with
	// other arguments is refused) until `chat migrate` declares them anew.
	Classic, Unbounded, Other map[string]bool

	catalog catalog.Catalog
}

// NamesFor returns the object names of a namespace with partitions
// partitions.
func NamesFor(namespace string, partitions int) Names {
	c := catalog.New(namespace)
	return Names{Exchange: c.Exchange(), Partitions: max(partitions, 1), Store: c.StoreQueue(0), DeadStore: c.DeadQueue(), QueueBound: DefaultQueueBound, catalog: c}
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

// Heartbeat is the AMQP heartbeat timeout of the event store writer's
// connections (Consume). The broker gives a connection up after two
// heartbeats without a frame from it, and only then hands the deliveries it
// held to another consumer: a frozen writer (a paused process, a stalled
// VM) holds its deliveries about 4 s, under its partition's lease, where the
// client library's default of 10 s held them 20 s and more
// (TestFrozenWriterLosesLittleTime). Publishers keep that default: a
// connection that must answer within 2 s would be dropped, with the
// publishes in flight on it, whenever the broker stalls that long.
const Heartbeat = 2 * time.Second

// WatermillConfig is the AMQP configuration of the publishers: a durable
// topic exchange, durable queues, persistent delivery, publisher confirms
// over a pool of channels. (The writer consumes with Consume.)
// amqpURLs may name several nodes of one cluster (ParseNodes); each
// connection, and each reconnect, goes to the next node that answers.
func WatermillConfig(amqpURLs string, names Names, publishChannels int) (wamqp.Config, error) {
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
		// Subscribers only check that their queue exists: DeclareTopology
		// declared it.
		Queue: wamqp.QueueConfig{
			GenerateName: names.queueFor,
			Durable:      true,
		},
		QueueBind: wamqp.QueueBindConfig{GenerateRoutingKey: bindingFor},
		Publish: wamqp.PublishConfig{
			GenerateRoutingKey: func(topic string) string { return topic },
			ConfirmDelivery:    true,
			ChannelPoolSize:    publishChannels,
		},
		TopologyBuilder: existingQueues{},
	}, nil
}

// Logger adapts slog to Watermill. Watermill logs every subscription's
// start at info, which is noise at our consumer counts, so info becomes debug.
func Logger(l *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
}
