package eventstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

// TestDeleteErases: the append that stores a message's delete erases the
// words of every stored event of it, and an event of it stored later (an
// edit or a create that raced the delete) is stored erased, whichever
// order they come in; what an append returns is what a read then gives;
// the other messages keep their words.
func TestDeleteErases(t *testing.T) {
	t.Parallel()
	const token = "abcdefghijklmnopqrstuvwxyz"
	created := func(n int64, body string) events.Event {
		return events.MessageCreated{Token: token, ChatNumber: 1, Number: n, Body: body}
	}
	edited := func(n int64, body string) events.Event {
		return events.MessageEdited{Token: token, ChatNumber: 1, Number: n, Body: body}
	}
	deleted := func(n int64) events.Event { return events.MessageDeleted{Token: token, ChatNumber: 1, Number: n} }
	type ev struct {
		e events.Event
		v int64
	}
	tests := []struct {
		name    string
		appends [][]ev
	}{
		{"create, edit, then delete", [][]ev{{{created(1, "secret"), 1}, {edited(1, "secret 2"), 2}}, {{deleted(1), 3}}}},
		{"an edit stored after the delete", [][]ev{{{created(1, "secret"), 1}}, {{deleted(1), 2}}, {{edited(1, "secret late"), 3}}}},
		{"the create stored after the delete", [][]ev{{{deleted(1), 2}}, {{created(1, "secret"), 1}}}},
		{"all in one append", [][]ev{{{edited(1, "secret late"), 3}, {deleted(1), 2}, {created(1, "secret"), 1}}}},
		{"deleted twice", [][]ev{{{created(1, "secret"), 1}, {deleted(1), 2}}, {{deleted(1), 3}, {edited(1, "secret late"), 4}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testenv.Config(t)
			db := testenv.DB(t, cfg)
			ctx := context.Background()
			part := partition.Of(token, cfg.Partitions)
			app := testenv.Appender(t, db, cfg.Namespace, part)
			store := eventstore.New(db, cfg.Namespace)
			for i, batch := range tc.appends {
				// Another message each time, which keeps its words.
				recs := []events.Record{rec(t, created(int64(100+i), "kept secret"), 1)}
				for _, e := range batch {
					recs = append(recs, rec(t, e.e, e.v))
				}
				res, err := store.AppendAll(ctx, []eventstore.Batch{{Appender: app, Records: recs}})
				if err != nil {
					t.Fatal(err)
				}
				got := res[0].Stored
				read, err := store.Read(ctx, part, got[0].Position-1, 1000, 1<<30)
				if err != nil {
					t.Fatal(err)
				}
				for j, st := range read {
					if string(st.Data) != string(got[j].Data) {
						t.Errorf("position %d reads %s, its append returned %s", st.Position, st.Data, got[j].Data)
					}
				}
			}
			read, err := store.Read(ctx, part, 0, 1000, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range read {
				mine := st.StreamID == events.MessageStream(token, 1, 1)
				switch {
				case mine && strings.Contains(string(st.Data), "secret"):
					t.Errorf("a %s of the deleted message kept its words: %s", st.Type, st.Data)
				case mine && events.Erasable(st.Type) && !strings.Contains(string(st.Data), `"erased":true`):
					t.Errorf("a %s of the deleted message is not marked erased: %s", st.Type, st.Data)
				case !mine && !strings.Contains(string(st.Data), "kept secret"):
					t.Errorf("another message lost its words: %s", st.Data)
				}
				if _, err := events.NewCodec().Decode(st.Record); err != nil {
					t.Errorf("an erased event does not decode: %v", err)
				}
			}
		})
	}
}
