package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
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
	store := eventstore.New(testenv.DB(t, cfg), cfg.Namespace)
	ctx := context.Background()
	app, err := store.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Release()

	const token = "abcdefghijklmnopqrstuvwxyz"
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
		stored, err := store.Read(ctx, 0, 100, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != tc.head {
			t.Errorf("%s: %d events stored, want %d", tc.name, len(stored), tc.head)
		}
	}
	stored, _ := store.Read(ctx, 0, 100, 1<<20)
	for i, s := range stored {
		if i > 0 && s.Position <= stored[i-1].Position {
			t.Errorf("positions out of order: %d after %d", s.Position, stored[i-1].Position)
		}
		if s.StreamID == m.StreamID && s.EventID != m.EventID {
			t.Errorf("a rival of %s was stored", m.StreamID)
		}
	}
}

// TestOneAppenderAtATime: a second appender waits until the first releases.
func TestOneAppenderAtATime(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	store := eventstore.New(testenv.DB(t, cfg), cfg.Namespace)
	first, err := store.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if second, err := store.Acquire(ctx); err == nil {
		second.Release()
		t.Fatal("a second appender got the lock while the first holds it")
	}
	first.Release()
	second, err := store.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	second.Release()
}
