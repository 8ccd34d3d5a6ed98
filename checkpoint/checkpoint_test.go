package checkpoint_test

import (
	"context"
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
