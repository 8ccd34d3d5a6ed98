package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/config"
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

// TestAppendAll: batches of several partitions commit in one transaction,
// each with its own positions; a record that collides with a stored one,
// or a partition taken over, fails the whole call, and nothing of any batch
// is stored.
func TestAppendAll(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	store := eventstore.New(db, cfg.Namespace)
	tokens := tokensOfPartitions(t, cfg.Partitions)
	apps := make([]*eventstore.Appender, len(tokens))
	for p := range tokens {
		apps[p] = testenv.Appender(t, db, cfg.Namespace, p)
	}
	batch := func(p int, numbers ...int64) eventstore.Batch {
		b := eventstore.Batch{Appender: apps[p]}
		for _, n := range numbers {
			b.Records = append(b.Records, rec(t, events.ChatCreated{Token: tokens[p], Number: n}, 1))
		}
		return b
	}
	first := []eventstore.Batch{batch(0, 1, 2), batch(2, 1), batch(3, 1, 2, 3)}
	if _, err := store.AppendAll(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := []eventstore.Batch{
		batch(1, 1),
		{Appender: apps[0], Records: []events.Record{first[0].Records[1], rec(t, events.ChatCreated{Token: tokens[0], Number: 3}, 1)}},
		{Appender: apps[3], Records: []events.Record{rec(t, events.ChatCreated{Token: tokens[3], Number: 3}, 1)}},
	}
	// A redelivery and a conflict among them: nothing is stored, and the
	// batches are appended one at a time.
	if _, err := store.AppendAll(ctx, second); !errors.Is(err, eventstore.ErrCollision) {
		t.Fatalf("batches with collisions: %v, want ErrCollision", err)
	}
	if heads, err := store.Heads(ctx); err != nil || heads[1] != 0 {
		t.Fatalf("heads %v, %v after a failed append; want partition 1's at 0", heads, err)
	}
	if stored, err := store.Read(ctx, 1, 0, 100, 1<<20); err != nil || len(stored) != 0 {
		t.Fatalf("partition 1 holds %d events, %v after a failed append; want none", len(stored), err)
	}
	want := [][]eventstore.Status{{eventstore.Appended}, {eventstore.Duplicate, eventstore.Appended}, {eventstore.Conflict}}
	for i, b := range second {
		res, err := store.AppendAll(ctx, []eventstore.Batch{b})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(res[0].Status) != fmt.Sprint(want[i]) {
			t.Errorf("batch %d alone: statuses %v, want %v", i, res[0].Status, want[i])
		}
		// What an append says it stored is what a read of the log returns.
		part := b.Appender.Partition()
		if len(res[0].Stored) == 0 {
			continue
		}
		read, err := store.Read(ctx, part, res[0].Stored[0].Position-1, 100, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(read) != len(res[0].Stored) {
			t.Fatalf("batch %d: the append says it stored %d events, a read finds %d", i, len(res[0].Stored), len(read))
		}
		for j, got := range res[0].Stored {
			r := read[j]
			if got.Partition != r.Partition || got.Position != r.Position || got.EventID != r.EventID || got.StreamVersion != r.StreamVersion || string(got.Data) != string(r.Data) {
				t.Errorf("batch %d: stored %+v, read %+v", i, got, r)
			}
		}
	}

	// Partition 2 is taken over: an append of it with others stores nothing.
	table := partition.NewTable(db, cfg.Namespace)
	if _, err := db.ExecContext(ctx, "UPDATE "+cfg.Namespace+"_partitions SET lease_until = UTC_TIMESTAMP(6) WHERE partition_id = 2"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := table.Acquire(ctx, 2, "other", time.Minute); err != nil || !ok {
		t.Fatalf("take partition 2 over: %v, %v", ok, err)
	}
	if _, err := store.AppendAll(ctx, []eventstore.Batch{batch(1, 2), batch(2, 2)}); !errors.Is(err, eventstore.ErrFenced) {
		t.Errorf("append with a partition taken over: %v, want ErrFenced", err)
	}

	wantHeads := map[int]int64{0: 3, 1: 1, 2: 1, 3: 3}
	heads, err := store.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for p, head := range wantHeads {
		stored, err := store.Read(ctx, p, 0, 100, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != int(head) {
			t.Errorf("partition %d holds %d events, want %d", p, len(stored), head)
		}
		for i, s := range stored {
			if s.Position != int64(i+1) || s.Partition != p {
				t.Errorf("partition %d: event %d at %d:%d; positions must run 1, 2, 3…", p, i, s.Partition, s.Position)
			}
		}
		if heads[p] != head {
			t.Errorf("partition %d: head %d, want %d", p, heads[p], head)
		}
	}
}

// TestNoWaitForOtherPartitions: an append, or a lease renewal, of many
// partitions never waits for the row lock of another partition, such as a
// writer paused in the middle of an append holds.
func TestNoWaitForOtherPartitions(t *testing.T) {
	t.Parallel()
	cfg := testenv.ConfigOn(t, "", func(c *config.Config) { c.Partitions = 64 })
	// A lock wait fails after a second instead of 50.
	dsn, err := mysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	dsn.Params = map[string]string{"innodb_lock_wait_timeout": "1"}
	cfg.MySQLDSN = dsn.FormatDSN()
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	store := eventstore.New(db, cfg.Namespace)
	table := partition.NewTable(db, cfg.Namespace)
	tokens := tokensOfPartitions(t, cfg.Partitions)
	const paused = 5
	others := []int{}
	var batches []eventstore.Batch
	for p := 8; p < 48; p++ {
		others = append(others, p)
		batches = append(batches, eventstore.Batch{
			Appender: testenv.Appender(t, db, cfg.Namespace, p),
			Records:  []events.Record{rec(t, events.ChatCreated{Token: tokens[p], Number: 1}, 1)},
		})
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT head FROM "+cfg.Namespace+"_partitions WHERE partition_id = ? FOR UPDATE", paused); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"append", func() error { _, err := store.AppendAll(ctx, batches); return err }},
		{"renewal", func() error { _, err := table.Renew(ctx, "test", others, time.Hour); return err }},
	} {
		if err := tc.do(); err != nil {
			t.Errorf("%s of partitions 8..47 while partition %d is locked: %v", tc.name, paused, err)
		}
	}
}

// tokensOfPartitions returns an application token of each partition.
func tokensOfPartitions(t *testing.T, n int) []string {
	t.Helper()
	tokens := make([]string, n)
	found := 0
	for i := 0; found < n; i++ {
		if i > 100000 {
			t.Fatal("no token found for some partitions")
		}
		tok := fmt.Sprintf("tok%023d", i)
		if p := partition.Of(tok, n); tokens[p] == "" {
			tokens[p] = tok
			found++
		}
	}
	return tokens
}
