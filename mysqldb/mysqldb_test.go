package mysqldb_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t) // migrates cfg.Namespace
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	if err := mysqldb.CheckMigrated(ctx, db, cfg.Namespace); err != nil {
		t.Fatalf("after migrate: %v", err)
	}
	if n, err := mysqldb.Migrate(ctx, db, cfg.Namespace, cfg.Partitions); err != nil || n != 0 {
		t.Fatalf("migrating again applied %d, %v; want 0, nil", n, err)
	}
	other := cfg.Namespace + "_other"
	if err := mysqldb.CheckMigrated(ctx, db, other); !errors.Is(err, mysqldb.ErrNotMigrated) {
		t.Fatalf("unmigrated namespace: %v, want ErrNotMigrated", err)
	}
	// Several processes may migrate at once.
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { _, err := mysqldb.Migrate(ctx, db, other, 3); errs <- err }()
	}
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := mysqldb.CheckMigrated(ctx, db, other); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateAdoptsAnOlderLog: a namespace whose log holds events but no
// partitions (written before partitions existed) gets one partition, whose
// head is the log's last position; an empty one gets the partitions asked for.
func TestMigrateAdoptsAnOlderLog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		events     int
		partitions int
		heads      string
	}{
		{"empty log", 0, 3, "[0 0 0]"},
		{"older log", 3, 3, "[3]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testenv.Config(t)
			db := testenv.DB(t, cfg)
			ctx := context.Background()
			names := catalog.New(cfg.Namespace)
			var recs []events.Record
			for n := range tc.events {
				env, err := events.New(events.MessageCreated{Token: "abcdefghijklmnopqrstuvwxyz", ChatNumber: 1, Number: int64(n + 1), Body: "x"}, 1, "")
				if err != nil {
					t.Fatal(err)
				}
				r, err := events.NewCodec().Encode(env)
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, r)
			}
			if len(recs) > 0 {
				if _, err := testenv.Appender(t, db, cfg.Namespace, 0).Append(ctx, recs); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.ExecContext(ctx, "DELETE FROM "+names.Partitions()); err != nil {
				t.Fatal(err)
			}
			if _, err := mysqldb.Migrate(ctx, db, cfg.Namespace, tc.partitions); err != nil {
				t.Fatal(err)
			}
			heads, err := eventstore.New(db, cfg.Namespace).Heads(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(heads); got != tc.heads {
				t.Errorf("heads %s, want %s", got, tc.heads)
			}
		})
	}
}
