package ingest_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/ingest"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

// TestDeadEraserErasesDeletedMessages: once a message's delete is stored,
// a sweep takes its words out of every dead letter that carries them (a
// parked line, a whole batch message, the payload of a single event), and
// leaves every other dead letter and line as it was, still in the queue.
func TestDeadEraserErasesDeletedMessages(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	ctx := context.Background()
	db := testenv.DB(t, cfg)
	// testenv declared the namespace's topology, and removes it.
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	const token = "abcdefghijklmnopqrstuvwxyz"
	codec := events.NewCodec()
	rec := func(ev events.Event, version int64) events.Record {
		env, err := events.New(ev, version, "")
		if err != nil {
			t.Fatal(err)
		}
		r, err := codec.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	store := eventstore.New(db, cfg.Namespace)
	app := testenv.Appender(t, db, cfg.Namespace, partition.Of(token, cfg.Partitions))
	gone := rec(events.MessageCreated{Token: token, ChatNumber: 1, Number: 1, Body: "secret one"}, 1)
	kept := rec(events.MessageCreated{Token: token, ChatNumber: 1, Number: 2, Body: "kept two"}, 1)
	if _, err := app.Append(ctx, []events.Record{gone, kept, rec(events.MessageDeleted{Token: token, ChatNumber: 1, Number: 1}, 2)}); err != nil {
		t.Fatal(err)
	}

	batch := func(recs ...events.Record) []byte {
		m, err := broker.BatchMessage(recs)
		if err != nil {
			t.Fatal(err)
		}
		return m.Payload
	}
	letters := [][]byte{
		batch(rec(events.MessageEdited{Token: token, ChatNumber: 1, Number: 1, Body: "secret late"}, 3)),
		batch(gone, kept),
		[]byte(`{"token":"` + token + `","chat_number":1,"number":1,"body":"secret bare"}`),
		batch(rec(events.MessageEdited{Token: token, ChatNumber: 1, Number: 2, Body: "kept edit"}, 2)),
		[]byte("not json at all"),
	}
	conn, err := broker.Dial(ctx, cfg.AMQPURL, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range letters {
		if err := ch.PublishWithContext(ctx, names.Exchange, broker.DeadTopic, true, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the dead letters queued", func() bool {
		q, err := ch.QueueDeclarePassive(names.DeadStore, true, false, false, false, names.QueueArgs(names.DeadStore))
		return err == nil && q.Messages == len(letters)
	})

	eraser := &ingest.DeadEraser{AMQPURL: cfg.AMQPURL, Names: names, Store: store, Log: slog.New(slog.DiscardHandler)}
	if err := eraser.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	var all []string
	for {
		d, ok, err := ch.Get(names.DeadStore, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		all = append(all, string(d.Body))
	}
	joined := strings.Join(all, "\n")
	if len(all) != len(letters) {
		t.Errorf("%d dead letters after the sweep, want %d:\n%s", len(all), len(letters), joined)
	}
	for _, want := range []string{"kept two", "kept edit", "not json at all"} {
		if !strings.Contains(joined, want) {
			t.Errorf("a dead letter lost %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "secret") || strings.Count(joined, `"erased":true`) != 3 {
		t.Errorf("the deleted message's words are still there (or not marked erased three times):\n%s", joined)
	}
}
