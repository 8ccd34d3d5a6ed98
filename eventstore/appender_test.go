package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

func rec(t *testing.T, ev events.Event, version int64) events.Record {
	t.Helper()
	env, err := events.New(ev, version, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := events.NewCodec().Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAppendClassifies(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	store := eventstore.New(db, cfg.Namespace)
	ctx := context.Background()
	const token = "abcdefghijklmnopqrstuvwxyz"
	part := partition.Of(token, cfg.Partitions)
	app := testenv.Appender(t, db, cfg.Namespace, part)

	a := rec(t, events.ApplicationCreated{Token: token, Name: "a"}, 1)
	c := rec(t, events.ChatCreated{Token: token, Number: 1}, 1)
	m := rec(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 1, Body: "x"}, 1)
	rival := rec(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 1, Body: "y"}, 1)
	m2 := rec(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 2, Body: "z"}, 1)
	rival2 := rec(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 2, Body: "w"}, 1)

	tests := []struct {
		name  string
		batch []events.Record
		want  []eventstore.Status
		head  int
	}{
		{"new events", []events.Record{a, c}, []eventstore.Status{eventstore.Appended, eventstore.Appended}, 2},
		{"a redelivery within the batch", []events.Record{m, m}, []eventstore.Status{eventstore.Appended, eventstore.Duplicate}, 3},
		{"redeliveries of stored events, and a new one", []events.Record{a, m2, c}, []eventstore.Status{eventstore.Duplicate, eventstore.Appended, eventstore.Duplicate}, 4},
		{"a rival of a stored event", []events.Record{rival}, []eventstore.Status{eventstore.Conflict}, 4},
		{"rivals within one batch", []events.Record{rec(t, events.ChatCreated{Token: token, Number: 2}, 1), rival2, m2}, []eventstore.Status{eventstore.Appended, eventstore.Conflict, eventstore.Duplicate}, 5},
	}
	for _, tc := range tests {
		got, err := app.Append(ctx, tc.batch)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i := range tc.want {
			if got[i] != tc.want[i] {
				t.Errorf("%s: status %v, want %v", tc.name, got, tc.want)
				break
			}
		}
		stored, err := store.Read(ctx, part, 0, 100, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != tc.head {
			t.Errorf("%s: %d events stored, want %d", tc.name, len(stored), tc.head)
		}
	}
	stored, _ := store.Read(ctx, part, 0, 100, 1<<20)
	for i, s := range stored {
		if s.Position != int64(i+1) {
			t.Errorf("position %d at index %d: positions must run 1, 2, 3… without a gap", s.Position, i)
		}
		if s.StreamID == m.StreamID && s.EventID != m.EventID {
			t.Errorf("a rival of %s was stored", m.StreamID)
		}
	}
}

// TestFencedWriterCannotAppend: once another writer took a partition over
// (the first one's lease ran out while it was paused), the first one's
// appends fail and store nothing, and the new writer's positions follow on
// without a gap.
func TestFencedWriterCannotAppend(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	store := eventstore.New(db, cfg.Namespace)
	table := partition.NewTable(db, cfg.Namespace)
	const token = "abcdefghijklmnopqrstuvwxyz"
	part := partition.Of(token, cfg.Partitions)

	first, ok, err := table.Acquire(ctx, part, "first", 200*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("first lease: %v, %v", ok, err)
	}
	if _, ok, err := table.Acquire(ctx, part, "second", time.Minute); err != nil || ok {
		t.Fatalf("a second writer took a held partition: %v, %v", ok, err)
	}
	old := store.Appender(part, first.Epoch)
	if _, err := old.Append(ctx, []events.Record{rec(t, events.ChatCreated{Token: token, Number: 1}, 1)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the first writer's lease runs out
	second, ok, err := table.Acquire(ctx, part, "second", time.Minute)
	if err != nil || !ok {
		t.Fatalf("second lease after the first ran out: %v, %v", ok, err)
	}
	if second.Epoch <= first.Epoch {
		t.Fatalf("epoch %d after %d: it must go up", second.Epoch, first.Epoch)
	}
	if _, err := old.Append(ctx, []events.Record{rec(t, events.ChatCreated{Token: token, Number: 2}, 1)}); !errors.Is(err, eventstore.ErrFenced) {
		t.Fatalf("the old writer appended after a takeover: %v", err)
	}
	if held, err := table.Renew(ctx, "first", []int{part}, time.Minute); err != nil || len(held) != 0 {
		t.Fatalf("the old writer renewed a lease it lost: %v, %v", held, err)
	}
	app := store.Appender(part, second.Epoch)
	if _, err := app.Append(ctx, []events.Record{rec(t, events.ChatCreated{Token: token, Number: 3}, 1)}); err != nil {
		t.Fatal(err)
	}
	stored, err := store.Read(ctx, part, 0, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range stored {
		got = append(got, fmt.Sprintf("%d:%s", s.Position, s.StreamID))
	}
	want := []string{"1:" + events.ChatStream(token, 1), "2:" + events.ChatStream(token, 3)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	if err := table.Release(ctx, second); err != nil {
		t.Fatal(err)
	}
}
