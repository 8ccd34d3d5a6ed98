package broker_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/internal/testenv"
)

// declare declares queue with args on a channel of its own.
func declare(t *testing.T, conn *amqp.Connection, queue string, args amqp.Table) (amqp.Queue, error) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	return ch.QueueDeclare(queue, true, false, false, false, args)
}

func dial(t *testing.T, url string) *amqp.Connection {
	t.Helper()
	conn, err := broker.Dial(context.Background(), url, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestQueuesAreQuorumQueues: the queues exist with the arguments every
// declarer uses, which a classic declaration contradicts.
func TestQueuesAreQuorumQueues(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	conn := dial(t, cfg.AMQPURL)
	for _, q := range []string{names.Store, names.DeadStore} {
		if _, err := declare(t, conn, q, names.QueueArgs(q)); err != nil {
			t.Errorf("%s with the processes' arguments: %v", q, err)
		}
		if _, err := declare(t, conn, q, nil); !broker.IsPreconditionFailed(err) {
			t.Errorf("%s as a classic queue: %v, want PRECONDITION_FAILED", q, err)
		}
	}
}

// TestPoisonMessageIsDeadLettered: a message given back again and again
// ends in the dead queue after the delivery limit instead of looping.
func TestPoisonMessageIsDeadLettered(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	conn := dial(t, cfg.AMQPURL)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	conf, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), names.Exchange, "event.0.Poison", false, false, amqp.Publishing{Body: []byte("x"), DeliveryMode: amqp.Persistent})
	if err != nil || !conf.Wait() {
		t.Fatalf("publish: %v", err)
	}
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(names.Store, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	timeout := time.After(60 * time.Second)
	for {
		stats, err := broker.QueueStats(context.Background(), cfg.AMQPURL, names.DeadStore)
		if err == nil && stats[0].Messages == 1 {
			break
		}
		select {
		case d := <-deliveries:
			n++
			_ = d.Nack(false, true)
		case <-time.After(100 * time.Millisecond):
		case <-timeout:
			t.Fatalf("not dead-lettered after %d deliveries", n)
		}
	}
	if n != broker.DeliveryLimit+1 && n != broker.DeliveryLimit {
		t.Errorf("dead-lettered after %d deliveries, want about %d", n, broker.DeliveryLimit)
	}
}

// TestClassicQueuesOfAnOlderRelease: a namespace whose queues are classic
// keeps working as it is, and ConvertQueues makes an empty, unused queue a
// quorum queue while it leaves one that holds messages alone.
func TestClassicQueuesOfAnOlderRelease(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	testenv.ClassicQueues(t, cfg)
	conn := dial(t, cfg.AMQPURL)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", names.DeadStore, false, false, amqp.Publishing{Body: []byte("parked")}); err != nil {
		t.Fatal(err)
	}
	got, err := broker.DeclareTopology(context.Background(), cfg.AMQPURL, names)
	if err != nil || !got.Classic[names.Store] || !got.Classic[names.DeadStore] {
		t.Fatalf("DeclareTopology: %v, classic %v; want both classic, kept", err, got.Classic)
	}
	if _, err := broker.WatermillConfig(cfg.AMQPURL, got, 1); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the parked message counted", func() bool {
		stats, err := broker.QueueStats(context.Background(), cfg.AMQPURL, names.DeadStore)
		return err == nil && stats[0].Messages == 1
	})
	got, err = broker.ConvertQueues(context.Background(), cfg.AMQPURL, names)
	if err != nil || got.Classic[names.Store] || !got.Classic[names.DeadStore] {
		t.Fatalf("ConvertQueues: %v, classic %v; want the store queue converted, the dead queue (not empty) kept", err, got.Classic)
	}
	if _, err := declare(t, conn, names.Store, names.QueueArgs(names.Store)); err != nil {
		t.Errorf("converted store queue: %v", err)
	}
}

// TestUnboundedQueuesOfAnOlderRelease: a store queue declared before queues
// had a length bound is used as it is, and ConvertQueues declares it anew,
// bounded, once it is empty and unused.
func TestUnboundedQueuesOfAnOlderRelease(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	names.QueueBound = int64(cfg.StoreQueueBytes)
	conn := dial(t, cfg.AMQPURL)
	old := names
	old.Unbounded = map[string]bool{names.Store: true}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDelete(names.Store, false, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := declare(t, conn, names.Store, old.QueueArgs(names.Store)); err != nil {
		t.Fatal(err)
	}
	if shape, err := broker.InspectQueue(conn, names, names.Store); err != nil || shape != broker.ShapeUnbounded {
		t.Fatalf("inspected as %v, %v; want %v", shape, err, broker.ShapeUnbounded)
	}
	got, err := broker.DeclareTopology(context.Background(), cfg.AMQPURL, names)
	if err != nil || !got.Unbounded[names.Store] {
		t.Fatalf("DeclareTopology: %v, unbounded %v; want the queue kept", err, got.Unbounded)
	}
	got, err = broker.ConvertQueues(context.Background(), cfg.AMQPURL, names)
	if err != nil || got.Unbounded[names.Store] {
		t.Fatalf("ConvertQueues: %v, unbounded %v; want the empty queue declared anew", err, got.Unbounded)
	}
	if shape, err := broker.InspectQueue(conn, names, names.Store); err != nil || shape != broker.ShapeCurrent {
		t.Errorf("after the conversion: %v, %v; want %v", shape, err, broker.ShapeCurrent)
	}
}
