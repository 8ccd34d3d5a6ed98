package main

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

// publisher publishes hand-made records into a namespace's exchange, as a
// broker redelivery or a faulty producer would present them.
func publisher(t *testing.T, cfg config.Config) *broker.Publisher {
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	if _, err := broker.DeclareTopology(context.Background(), cfg.AMQPURL, names); err != nil {
		t.Fatal(err)
	}
	pub, err := broker.NewPublisher(testenv.Watermill(t, cfg, 2), names, watermill.NopLogger{}, broker.PublisherConfig{Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	return pub
}

func record(t *testing.T, ev events.Event, version int64) events.Record {
	env, err := events.New(ev, version, "test")
	if err != nil {
		t.Fatal(err)
	}
	r, err := events.NewCodec().Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// parked takes what the dead-letter queue holds: the reason of each message.
func parked(t *testing.T, cfg config.Config) []string {
	conn, err := amqp.Dial(cfg.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var reasons []string
	for {
		d, ok, err := ch.Get(broker.NamesFor(cfg.Namespace, cfg.Partitions).DeadStore, false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return reasons
		}
		reason, _ := d.Headers[middleware.ReasonForPoisonedKey].(string)
		reasons = append(reasons, reason)
		// Taken off the queue, so that a later look sees only what came since.
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRedeliveryAndConflicts delivers events twice, a conflicting event and
// an undecodable one: duplicates are stored and counted once, the others are
// parked with their reason and block nothing behind them.
func TestRedeliveryAndConflicts(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	pub := publisher(t, cfg)
	ctx := context.Background()
	const token = "aaaaaaaaaaaaaaaaaaaaaaaaaa"

	app := record(t, events.ApplicationCreated{Token: token, Name: "twice"}, 1)
	chat := record(t, events.ChatCreated{Token: token, Number: 1, Name: "c"}, 1)
	msg := record(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 1, Body: "original"}, 1)
	conflicting := record(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 1, Body: "impostor"}, 1)
	// Another application, in another partition: the writer may append both
	// partitions' batches, duplicates among them, in one transaction.
	other := "bbbbbbbbbbbbbbbbbbbbbbbbbb"
	for c := 'c'; partition.Of(other, cfg.Partitions) == partition.Of(token, cfg.Partitions); c++ {
		other = strings.Repeat(string(c), 26)
	}
	otherApp := record(t, events.ApplicationCreated{Token: other, Name: "beside"}, 1)
	otherChat := record(t, events.ChatCreated{Token: other, Number: 1, Name: "c"}, 1)
	otherMsg := record(t, events.MessageCreated{Token: other, ChatNumber: 1, Number: 1, Body: "beside"}, 1)
	for _, r := range []events.Record{app, otherApp, chat, otherChat, msg, otherMsg, app, otherApp, chat, msg, otherMsg} {
		if err := pub.Publish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	s := start(t, cfg, true, true)
	s.eventually(t, "/applications/"+token+"/chats/1/messages/1", nil)
	s.eventually(t, "/applications/"+other+"/chats/1/messages/1", nil)
	// Duplicates arriving after the first copy was stored and projected.
	for _, r := range []events.Record{msg, chat, conflicting} {
		if err := pub.Publish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	undecodable := message.NewMessage("not-a-uuid", []byte("{"))
	undecodable.Metadata.Set("event_type", "MessageCreated")
	raw, err := wamqp.NewPublisher(testenv.Watermill(t, cfg, 0), watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.Publish(broker.PartitionTopic(0), undecodable); err != nil {
		t.Fatal(err)
	}
	// A batch message whose middle line cannot be read and whose last event
	// conflicts: each of those is parked alone, and the first is stored.
	third := record(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 3, Body: "in a batch"}, 1)
	conflicting2 := record(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 2, Body: "impostor too"}, 1)
	batch, err := broker.BatchMessage([]events.Record{third, conflicting2})
	if err != nil {
		t.Fatal(err)
	}
	first, rest, _ := bytes.Cut(batch.Payload, []byte{'\n'})
	batch.Payload = slices.Concat(first, []byte("\n{\"event_id\":\n"), rest)
	if err := raw.Publish("event."+strconv.Itoa(partition.Of(token, cfg.Partitions))+".Events", batch); err != nil {
		t.Fatal(err)
	}
	// Something published after the bad ones still gets through.
	if err := pub.Publish(ctx, record(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 2, Body: "after"}, 1)); err != nil {
		t.Fatal(err)
	}
	s.eventually(t, "/applications/"+token+"/chats/1/messages/2", nil)
	s.eventually(t, "/applications/"+token+"/chats/1/messages/3", nil)

	var reasons []string
	testenv.Eventually(t, 10*time.Second, "four parked events", func() bool {
		reasons = append(reasons, parked(t, cfg)...)
		return len(reasons) >= 4
	})
	time.Sleep(200 * time.Millisecond)
	reasons = append(reasons, parked(t, cfg)...)
	if len(reasons) != 4 {
		t.Errorf("parked %d events, want 4: %q", len(reasons), reasons)
	}
	for want, n := range map[string]int{"stream version already taken": 2, "undecodable event": 2} {
		found := 0
		for _, r := range reasons {
			if strings.Contains(r, want) {
				found++
			}
		}
		if found != n {
			t.Errorf("%d parked events with reason %q, want %d: %q", found, want, n, reasons)
		}
	}
	got := s.must(t, 200, "GET", "/applications/"+token+"/chats/1", nil).object(t)
	if num(got["messages_count"]) != 3 {
		t.Errorf("messages_count %v after redelivery, want 3", got["messages_count"])
	}
	if got := s.must(t, 200, "GET", "/applications/"+token, nil).object(t); num(got["chats_count"]) != 1 {
		t.Errorf("chats_count %v after redelivery, want 1", got["chats_count"])
	}
	if body := s.must(t, 200, "GET", "/applications/"+token+"/chats/1/messages/1", nil).object(t)["body"]; body != "original" {
		t.Errorf("message 1 body %q: the conflicting event was applied", body)
	}
	if got := s.must(t, 200, "GET", "/applications/"+other+"/chats/1", nil).object(t); num(got["messages_count"]) != 1 {
		t.Errorf("the other application's messages_count %v after redelivery, want 1", got["messages_count"])
	}
}
