package projections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/projections"
)

// TestMySQLApplyOutlivesADeadlock: the MySQL projection's transaction,
// chosen as a deadlock's victim (here against a heavier transaction that
// locks two partitions' positions in the other order, as a replay's
// checkpoint writes may), runs again and applies its batches, rather than
// failing the round for the runner to try again a second later.
func TestMySQLApplyOutlivesADeadlock(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	positions := cfg.Namespace + "_read_position"
	scratch := cfg.Namespace + "_heavy"
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+scratch+" (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 200; i++ {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%d, 0)", scratch, i)); err != nil {
			t.Fatal(err)
		}
	}

	// The heavy transaction changes many rows, then holds partition 1's
	// position.
	heavy, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer heavy.Rollback()
	if _, err := heavy.ExecContext(ctx, "UPDATE "+scratch+" SET v = v + 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := heavy.ExecContext(ctx, "SELECT position FROM "+positions+" WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	proj := projections.NewMySQL(db, cfg.Namespace)
	var batches [][]projections.Event
	for part, token := range []string{"abcdefghijklmnopqrstuvwxy0", "abcdefghijklmnopqrstuvwxy1"} {
		var batch []projections.Event
		for i, env := range history(token) {
			batch = append(batch, projections.Event{Partition: part, Position: int64(i + 1), Envelope: env})
		}
		batches = append(batches, batch)
	}
	applied := make(chan error, 1)
	go func() { applied <- proj.Apply(ctx, batches) }()

	// The Apply locks partition 0's position, then waits for partition
	// 1's: its locking read has run for a second, where taking a free row
	// takes microseconds.
	testenv.Eventually(t, 20*time.Second, "the Apply waits for partition 1's position", func() bool {
		var waiting int
		err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE db = DATABASE() AND info LIKE ? AND time >= 1",
			"SELECT id, position FROM "+positions+"%FOR UPDATE").Scan(&waiting)
		return err == nil && waiting > 0
	})
	// Partition 0's position now closes the circle: the server undoes the
	// lighter transaction, the Apply's, and lets this one through.
	if _, err := heavy.ExecContext(ctx, "SELECT position FROM "+positions+" WHERE id = 0 FOR UPDATE"); err != nil {
		t.Fatalf("the heavy transaction was the deadlock's victim: %v", err)
	}
	if err := heavy.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-applied; err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for part, batch := range batches {
		if pos, err := proj.Checkpoint(ctx, part); err != nil || pos != int64(len(batch)) {
			t.Errorf("partition %d at %d, %v; want %d", part, pos, err, len(batch))
		}
	}
}
