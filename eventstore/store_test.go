package eventstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

// TestReadIsBoundedInBytes: a batch ends at its event limit or once its
// payloads reach the byte cap, whichever comes first, and always holds at
// least one event, however large.
func TestReadIsBoundedInBytes(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	store := eventstore.New(db, cfg.Namespace)
	ctx := context.Background()
	const token = "abcdefghijklmnopqrstuvwxyz"
	part := partition.Of(token, cfg.Partitions)
	app := testenv.Appender(t, db, cfg.Namespace, part)
	// Ten messages of 64 KiB of '<', each about 64 KiB of payload...
	var recs []events.Record
	for i := int64(1); i <= 10; i++ {
		recs = append(recs, rec(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: i, Body: strings.Repeat("<", 64<<10)}, 1))
	}
	// Then a hundred small ones, more than one chunk of lengths.
	for i := int64(11); i <= 110; i++ {
		recs = append(recs, rec(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: i, Body: "x"}, 1))
	}
	if _, err := app.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	size := len(recs[0].Data)
	if size > 64<<10+200 {
		t.Fatalf("a payload of 64 KiB of '<' takes %d bytes", size)
	}

	tests := []struct {
		after           int64
		limit, maxBytes int
		want            []int64 // positions
		full            bool
	}{
		{0, 1000, 100 << 20, positions(1, 110), false},
		{0, 3, 100 << 20, positions(1, 3), true},
		{10, 100, 1 << 20, positions(11, 110), true},
		{10, 50, 1 << 20, positions(11, 60), true},
		{5, 1000, 1 << 20, positions(6, 110), false},
		{0, 100, 3 * size, []int64{1, 2, 3}, true},
		{0, 100, 3*size - 1, []int64{1, 2, 3}, true}, // the event that reaches the cap is the last
		{0, 100, 3*size + 1, []int64{1, 2, 3, 4}, true},
		{4, 100, 1, []int64{5}, true}, // one event, however large
		{8, 2, 3 * size, []int64{9, 10}, true},
		{108, 100, 3 * size, []int64{109, 110}, false},
		{110, 100, 1 << 20, nil, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("after %d limit %d bytes %d", tc.after, tc.limit, tc.maxBytes), func(t *testing.T) {
			got, err := store.Read(ctx, part, tc.after, tc.limit, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			var positions []int64
			for _, st := range got {
				positions = append(positions, st.Position)
				if string(st.Data) != string(recs[st.Position-1].Data) {
					t.Errorf("event %d reads back different", st.Position)
				}
			}
			if fmt.Sprint(positions) != fmt.Sprint(tc.want) {
				t.Errorf("positions %v, want %v", positions, tc.want)
			}
			if full := eventstore.Full(got, tc.limit, tc.maxBytes); full != tc.full {
				t.Errorf("Full = %v, want %v", full, tc.full)
			}
		})
	}
}

func positions(from, to int64) []int64 {
	var out []int64
	for p := from; p <= to; p++ {
		out = append(out, p)
	}
	return out
}

// TestReadManyIsReadOfEach: reading several partitions at once (two
// requests may ask for the same one, from different positions, as two
// projections do) gives each request what Read gives it alone.
func TestReadManyIsReadOfEach(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	store := eventstore.New(db, cfg.Namespace)
	ctx := context.Background()
	tokens := tokensOfPartitions(t, cfg.Partitions)
	// Partition 0: five large events, then a hundred small ones (more than
	// a first chunk); partition 1: ten small ones; partition 2: none.
	var big, small []events.Record
	for i := int64(1); i <= 5; i++ {
		big = append(big, rec(t, events.MessageCreated{Token: tokens[0], ChatNumber: 1, Number: i, Body: strings.Repeat("<", 64<<10)}, 1))
	}
	for i := int64(6); i <= 105; i++ {
		big = append(big, rec(t, events.MessageCreated{Token: tokens[0], ChatNumber: 1, Number: i, Body: "x"}, 1))
	}
	for i := int64(1); i <= 10; i++ {
		small = append(small, rec(t, events.MessageCreated{Token: tokens[1], ChatNumber: 1, Number: i, Body: "y"}, 1))
	}
	if _, err := store.AppendAll(ctx, []eventstore.Batch{
		{Appender: testenv.Appender(t, db, cfg.Namespace, 0), Records: big},
		{Appender: testenv.Appender(t, db, cfg.Namespace, 1), Records: small},
	}); err != nil {
		t.Fatal(err)
	}
	size := len(big[0].Data)
	for _, tc := range []struct {
		name string
		reqs []eventstore.ReadRequest
	}{
		{"short batches", []eventstore.ReadRequest{{0, 100, 1000, 1 << 20}, {1, 0, 1000, 1 << 20}, {2, 0, 1000, 1 << 20}}},
		{"one past a first chunk", []eventstore.ReadRequest{{0, 5, 1000, 1 << 20}, {1, 3, 1000, 1 << 20}}},
		{"byte caps", []eventstore.ReadRequest{{0, 0, 1000, 2 * size}, {1, 0, 1000, 1}, {0, 2, 1000, 1}}},
		{"limits", []eventstore.ReadRequest{{0, 0, 3, 1 << 30}, {1, 0, 4, 1 << 20}, {0, 50, 40, 1 << 20}}},
		{"the same partition from two positions", []eventstore.ReadRequest{{1, 0, 1000, 1 << 20}, {1, 7, 1000, 1 << 20}}},
		{"nothing after", []eventstore.ReadRequest{{0, 105, 1000, 1 << 20}, {1, 10, 1000, 1 << 20}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.ReadMany(ctx, tc.reqs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range tc.reqs {
				alone, err := store.Read(ctx, r.Partition, r.After, r.Limit, r.MaxBytes)
				if err != nil {
					t.Fatal(err)
				}
				if summary(got[i]) != summary(alone) {
					t.Errorf("request %+v: read together %s, alone %s", r, summary(got[i]), summary(alone))
				}
			}
		})
	}
}

// summary is a batch's partitions, positions and payload sizes.
func summary(batch []eventstore.Stored) string {
	var b strings.Builder
	for _, st := range batch {
		fmt.Fprintf(&b, "%d:%d(%d) ", st.Partition, st.Position, len(st.Data))
	}
	return b.String()
}
