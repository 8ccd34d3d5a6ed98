package mysqldb_test

import (
	"context"
	"errors"
	"testing"

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
