package projections_test

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/readmodel"
)

// history is a small event log: an application renamed twice, two chats,
// messages with edits.
func history(token string) []events.Envelope {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	var out []events.Envelope
	add := func(ev events.Event, version int64) {
		at = at.Add(time.Second)
		out = append(out, events.Envelope{EventID: uuid.New(), StreamVersion: version, OccurredAt: at, Event: ev})
	}
	add(events.ApplicationCreated{Token: token, Name: "acme"}, 1)
	add(events.ChatCreated{Token: token, Number: 1, Name: "one"}, 1)
	add(events.ChatCreated{Token: token, Number: 2, Name: "two"}, 1)
	add(events.ApplicationRenamed{Token: token, Name: "acme 2"}, 2)
	for i := int64(1); i <= 5; i++ {
		add(events.MessageCreated{Token: token, ChatNumber: 1, Number: i, Body: fmt.Sprint("body ", i)}, 1)
	}
	add(events.MessageCreated{Token: token, ChatNumber: 2, Number: 1, Body: "other chat"}, 1)
	add(events.MessageEdited{Token: token, ChatNumber: 1, Number: 2, Body: "edited once"}, 2)
	add(events.MessageEdited{Token: token, ChatNumber: 1, Number: 2, Body: "edited twice"}, 3)
	add(events.ChatRenamed{Token: token, Number: 2, Name: "two renamed"}, 2)
	add(events.ApplicationRenamed{Token: token, Name: "acme 3"}, 3)
	// Deletes: one raced by a later edit, one done twice, one of a
	// number never created.
	add(events.MessageDeleted{Token: token, ChatNumber: 1, Number: 3}, 2)
	add(events.MessageEdited{Token: token, ChatNumber: 1, Number: 3, Body: "edited after the delete"}, 3)
	add(events.MessageDeleted{Token: token, ChatNumber: 1, Number: 4}, 2)
	add(events.MessageDeleted{Token: token, ChatNumber: 1, Number: 4}, 3)
	add(events.MessageDeleted{Token: token, ChatNumber: 1, Number: 6}, 2)
	return out
}

// snapshot is everything the queries show of one application.
func snapshot(t *testing.T, q *readmodel.Queries, token string) string {
	ctx := context.Background()
	app, err := q.Application(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("%+v\n", app)
	chats, err := q.Chats(ctx, token, readmodel.Page{Number: 1, PerPage: 100})
	if err != nil {
		t.Fatal(err)
	}
	chatItems, err := chats.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s += fmt.Sprintf("Total:%d Last:%d %+v\n", chats.Total, chats.Last, chatItems)
	for _, c := range chatItems {
		msgs, err := q.Messages(ctx, token, c.Number, readmodel.Page{Number: 1, PerPage: 100})
		if err != nil {
			t.Fatal(err)
		}
		msgItems, err := msgs.Collect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s += fmt.Sprintf("Total:%d Last:%d %+v\n", msgs.Total, msgs.Last, msgItems)
	}
	return s
}

// TestFoldIsOrderIndependent applies the same events in many orders and in
// batches of many sizes: the read tables come out the same every time, as
// events of different streams may be stored in any order.
func TestFoldIsOrderIndependent(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	rng := rand.New(rand.NewSource(1))

	var want string
	for round := 0; round < 12; round++ {
		ns := fmt.Sprintf("%s_r%d", cfg.Namespace, round)
		if _, err := mysqldb.Migrate(ctx, db, ns, 1); err != nil {
			t.Fatal(err)
		}
		proj := projections.NewMySQL(db, ns)
		if _, err := proj.Checkpoint(ctx, 0); err != nil {
			t.Fatal(err)
		}
		token := "abcdefghijklmnopqrstuvwxyz"
		envs := history(token)
		if round > 0 { // round 0 is the order of the log
			rng.Shuffle(len(envs), func(i, j int) { envs[i], envs[j] = envs[j], envs[i] })
		}
		batch := 1 + rng.Intn(len(envs))
		for start, pos := 0, int64(0); start < len(envs); start += batch {
			var b []projections.Event
			for _, e := range envs[start:min(start+batch, len(envs))] {
				pos++
				b = append(b, projections.Event{Position: pos, Envelope: e})
			}
			if err := proj.Apply(ctx, [][]projections.Event{b}); err != nil {
				t.Fatal(err)
			}
		}
		// Applying a batch again is a no-op: the checkpoint has passed it.
		if err := proj.Apply(ctx, [][]projections.Event{{{Position: 1, Envelope: envs[0]}}}); err != nil {
			t.Fatal(err)
		}
		got := snapshot(t, readmodel.NewQueries(db, ns), token)
		if round == 0 {
			want = got
			continue
		}
		if got != want {
			t.Fatalf("round %d (batches of %d) differs:\n%s\nwant:\n%s", round, batch, got, want)
		}
	}
	for _, check := range []string{"Name:acme 3", "ChatsCount:2", "Name:two renamed", "MessagesCount:3", "Body:edited twice", "Total:3 Last:5", "Number:3 Body: "} {
		if !strings.Contains(want, check) {
			t.Errorf("fold is missing %q:\n%s", check, want)
		}
	}
}
