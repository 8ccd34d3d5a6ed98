package mysqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
)

// TestRetriedOutlivesADeadlock makes a real deadlock between a heavy
// transaction and a light one run through Retried: the server undoes the
// light one (the victim is the transaction that changed fewer rows), and
// Retried runs it again once the heavy one has committed.
func TestRetriedOutlivesADeadlock(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	table := cfg.Namespace + "_deadlock"
	mustExec(t, db, "CREATE TABLE "+table+" (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + table) })
	for i := 1; i <= 50; i++ {
		mustExec(t, db, fmt.Sprintf("INSERT INTO %s VALUES (%d, 0)", table, i))
	}

	heavy, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer heavy.Rollback()
	// The heavy transaction changes rows 2..50 and holds them.
	if _, err := heavy.Exec("UPDATE " + table + " SET v = v + 1 WHERE id >= 2"); err != nil {
		t.Fatal(err)
	}

	runs := 0
	lockedOne := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- mysqldb.Retried(ctx, func(ctx context.Context) error {
			runs++
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET v = v + 10 WHERE id = 1"); err != nil {
				return err
			}
			if runs == 1 {
				close(lockedOne)
			}
			// Waits for the heavy transaction's row 2.
			if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET v = v + 10 WHERE id = 2"); err != nil {
				return err
			}
			return tx.Commit()
		})
	}()
	<-lockedOne
	// Row 1 is the light transaction's, which waits for row 2: a deadlock.
	// The server lets the heavy one wait until it has undone the light one.
	if _, err := heavy.Exec("UPDATE " + table + " SET v = v + 1 WHERE id = 1"); err != nil {
		t.Fatalf("the heavy transaction was the victim: %v", err)
	}
	if err := heavy.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Retried: %v", err)
	}
	if runs != 2 {
		t.Errorf("the light transaction ran %d times, want 2 (undone once, then committed)", runs)
	}
	var v1, v2 int
	if err := db.QueryRow("SELECT (SELECT v FROM "+table+" WHERE id = 1), (SELECT v FROM "+table+" WHERE id = 2)").Scan(&v1, &v2); err != nil {
		t.Fatal(err)
	}
	if v1 != 11 || v2 != 11 {
		t.Errorf("rows 1 and 2 hold %d and %d, want 11 and 11: each transaction applied once", v1, v2)
	}
}

// TestRetriedGivesUp: an error that is not about a lock is returned at
// once, and a lock lost every time is returned after a few runs.
func TestRetriedGivesUp(t *testing.T) {
	t.Parallel()
	deadlock := fmt.Errorf("append: %w", &mysqlError1213)
	other := errors.New("connection refused")
	tests := []struct {
		name string
		err  error
		runs int
	}{
		{"success", nil, 1},
		{"another error", other, 1},
		{"a deadlock every time", deadlock, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runs := 0
			err := mysqldb.Retried(context.Background(), func(context.Context) error { runs++; return tc.err })
			if !errors.Is(err, tc.err) || runs != tc.runs {
				t.Errorf("Retried ran %d times and returned %v; want %d and %v", runs, err, tc.runs, tc.err)
			}
		})
	}
}

var mysqlError1213 = mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock; try restarting transaction"}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}
