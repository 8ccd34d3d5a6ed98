package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

// TestPublisherBatchesEveryRecordOnce: records published at once by many
// callers to many partitions are confirmed, each reaches its partition's
// queue exactly once, and they travel in fewer broker messages than there
// are records.
func TestPublisherBatchesEveryRecordOnce(t *testing.T) {
	t.Parallel()
	cfg := testenv.ConfigOn(t, "", func(c *config.Config) { c.Partitions = 8 })
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	pub, err := broker.NewPublisher(testenv.Watermill(t, cfg, 2), names, watermill.NopLogger{}, broker.PublisherConfig{Timeout: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	const callers, each = 64, 25
	var wg sync.WaitGroup
	sent := make(chan events.Record, callers*each)
	for c := range callers {
		wg.Go(func() {
			token := fmt.Sprintf("%026d", c)
			for i := range each {
				r := testRecord(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: int64(i + 1), Body: "x"})
				if err := pub.Publish(context.Background(), r); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				sent <- r
			}
		})
	}
	wg.Wait()
	close(sent)

	want := map[string]int{} // event id → partition
	for r := range sent {
		want[r.EventID.String()] = partition.Of(events.TokenOf(r.StreamID), cfg.Partitions)
	}
	conn := dial(t, cfg.AMQPURL)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	messages, got := 0, map[string]int{}
	for p, q := range names.StoreQueues() {
		for {
			d, ok, err := ch.Get(q, true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			messages++
			msg := message.NewMessage(d.MessageId, d.Body)
			for k, v := range d.Headers {
				if s, ok := v.(string); ok {
					msg.Metadata.Set(k, s)
				}
			}
			for _, l := range broker.Records(msg) {
				if l.Err != nil {
					t.Fatalf("queue %s: %v", q, l.Err)
				}
				id := l.Record.EventID.String()
				if _, dup := got[id]; dup {
					t.Errorf("event %s in the queues twice", id)
				}
				got[id] = p
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d events in the queues, %d published", len(got), len(want))
	}
	for id, p := range want {
		if got[id] != p {
			t.Errorf("event %s in partition %d's queue, belongs to %d", id, got[id], p)
		}
	}
	if messages >= len(want) {
		t.Errorf("%d records in %d broker messages: none travelled together", len(want), messages)
	}
	t.Logf("%d records in %d broker messages", len(want), messages)
}
