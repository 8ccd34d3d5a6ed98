package eventstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

// TestCreatedStreams: of the streams named, those whose first event the
// partition holds up to a position, however many are named; and the log's
// last position.
func TestCreatedStreams(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	store := eventstore.New(db, cfg.Namespace)
	ctx := context.Background()
	if last, err := eventstore.LastPosition(ctx, db, cfg.Namespace); err != nil || last != 0 {
		t.Fatalf("an empty log's last position is %d, %v; want 0", last, err)
	}
	const token = "abcdefghijklmnopqrstuvwxyz"
	part := partition.Of(token, cfg.Partitions)
	msg := func(n int64) string { return events.MessageStream(token, 1, n) }
	// Positions: 1 creates message 1, 2 edits it, 3 creates message 2, 4
	// message 3.
	recs := []events.Record{
		rec(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 1, Body: "a"}, 1),
		rec(t, events.MessageEdited{Token: token, ChatNumber: 1, Number: 1, Body: "b"}, 2),
		rec(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 2, Body: "c"}, 1),
		rec(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 3, Body: "d"}, 1),
	}
	if _, err := testenv.Appender(t, db, cfg.Namespace, part).Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if last, err := eventstore.LastPosition(ctx, db, cfg.Namespace); err != nil || last != 4 {
		t.Fatalf("last position %d, %v; want 4", last, err)
	}
	// Many more ids than one query names, the stored ones among them.
	many := []string{msg(1)}
	for n := int64(100); n < 1300; n++ {
		many = append(many, msg(n))
	}
	many = append(many, msg(3), msg(2))

	tests := []struct {
		name      string
		partition int
		upTo      int64
		ids       []string
		want      []string
	}{
		{"none named", part, 4, nil, nil},
		{"before the log", part, 0, []string{msg(1), msg(2)}, nil},
		{"up to an edit", part, 2, []string{msg(1), msg(2), msg(3)}, []string{msg(1)}},
		{"up to the end", part, 4, []string{msg(1), msg(2), msg(3), msg(9)}, []string{msg(1), msg(2), msg(3)}},
		{"past the end", part, 100, []string{msg(3)}, []string{msg(3)}},
		{"other partition", (part + 1) % cfg.Partitions, 4, []string{msg(1)}, nil},
		{"many named", part, 3, many, []string{msg(1), msg(2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "other partition" && cfg.Partitions == 1 {
				t.Skip("the namespace has one partition")
			}
			var got []string
			err := store.CreatedStreams(ctx, db, tc.partition, tc.upTo, tc.ids, func(id string) error {
				got = append(got, id)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
