package checkpoint_test

import (
	"context"
	"database/sql"
	"maps"
	"testing"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
)

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	cps := checkpoint.New(cfg.Namespace)
	part := 0
	at := func(name string, want int64) {
		t.Helper()
		got, err := cps.Get(ctx, db, name, part)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s at %d, want %d", name, got, want)
		}
	}

	at("p", 0) // missing
	if pos, err := cps.Ensure(ctx, db, "p", part); err != nil || pos != 0 {
		t.Fatalf("Ensure of a new checkpoint: %d, %v", pos, err)
	}
	if err := cps.Advance(ctx, db, "p", part, 10); err != nil {
		t.Fatal(err)
	}
	if err := cps.Advance(ctx, db, "p", part, 5); err != nil { // an older batch again
		t.Fatal(err)
	}
	at("p", 10)
	if pos, err := cps.Ensure(ctx, db, "p", part); err != nil || pos != 10 {
		t.Fatalf("Ensure of an existing checkpoint: %d, %v", pos, err)
	}
	if err := cps.Set(ctx, db, "p", part, 7); err != nil {
		t.Fatal(err)
	}
	at("p", 7)
	if err := cps.Set(ctx, db, "q", part, 3); err != nil {
		t.Fatal(err)
	}
	at("q", 3)
	if err := cps.Reset(ctx, db, "q", part); err != nil {
		t.Fatal(err)
	}
	at("q", 0)
	if err := cps.Delete(ctx, db, "p", part); err != nil {
		t.Fatal(err)
	}
	at("p", 0)

	// Each partition has its own.
	part = 3
	if err := cps.Set(ctx, db, "q", part, 9); err != nil {
		t.Fatal(err)
	}
	at("q", 9)
	part = 0
	at("q", 0)

	paused := func(want bool) {
		t.Helper()
		got, err := cps.Paused(ctx, db, "search")
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("paused %v, want %v", got, want)
		}
	}
	paused(false)
	if err := cps.Pause(ctx, db, "search"); err != nil {
		t.Fatal(err)
	}
	paused(false) // no replay holds its lock: a flag left by a dead replay
	lock, err := mysqldb.AcquireLock(ctx, db, catalog.New(cfg.Namespace).ReplayLock("search"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	paused(true)
	if err := cps.Resume(ctx, db, "search"); err != nil {
		t.Fatal(err)
	}
	paused(false)
}

// TestCheckpointsOfSeveralPartitions: LockAll reads a checkpoint in
// several partitions (creating those missing at 0) and holds their rows
// until its transaction ends; AdvanceAll moves each, never back, and
// nothing else.
func TestCheckpointsOfSeveralPartitions(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	cps := checkpoint.New(cfg.Namespace)
	for p, pos := range map[int]int64{1: 5, 2: 8} {
		if err := cps.Set(ctx, db, "p", p, pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := cps.Set(ctx, db, "other", 1, 4); err != nil {
		t.Fatal(err)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	got, err := cps.LockAll(ctx, tx, "p", []int{3, 1, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]int64{1: 5, 2: 8, 3: 0}; !maps.Equal(got, want) {
		t.Fatalf("LockAll: %v, want %v", got, want)
	}
	for _, tc := range []struct {
		name       string
		partitions []int
		waits      bool
	}{
		{"a partition another transaction locked", []int{2}, true},
		{"other partitions", []int{0}, false},
	} {
		if err := lockedElsewhere(ctx, db, cps, tc.partitions); (err != nil) != tc.waits {
			t.Errorf("%s: %v, want waiting %v", tc.name, err, tc.waits)
		}
	}
	if err := cps.AdvanceAll(ctx, tx, "p", map[int]int64{1: 9, 2: 6, 3: 2}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		name      string
		partition int
		pos       int64
	}{
		{"p", 0, 0}, {"p", 1, 9}, {"p", 2, 8}, {"p", 3, 2}, {"other", 1, 4},
	} {
		if pos, err := cps.Get(ctx, db, want.name, want.partition); err != nil || pos != want.pos {
			t.Errorf("%s in partition %d: %d, %v; want %d", want.name, want.partition, pos, err, want.pos)
		}
	}
}

// lockedElsewhere locks partitions' checkpoints in a transaction of its
// own that gives up waiting for a row lock after a second.
func lockedElsewhere(ctx context.Context, db *sql.DB, cps *checkpoint.Store, partitions []int) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = 1"); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = DEFAULT")
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = cps.LockAll(ctx, tx, "p", partitions)
	return err
}
