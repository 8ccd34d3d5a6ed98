package partition

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/mysqldb/stmt"
)

// ErrNotSetUp means the namespace has no partitions: it was not migrated.
var ErrNotSetUp = errors.New("the namespace has no partitions; run `chat migrate`")

// Lease is a writer's hold on a partition. Epoch goes up at every
// acquisition, so work fenced by it (an append) fails once another
// acquisition happened.
type Lease struct {
	Partition int
	Owner     string
	Epoch     int64
}

// Status is one partition as the table has it.
type Status struct {
	Partition int
	Head      int64
	Owner     string // "" when free
	Epoch     int64
	// Left is how long the lease still runs; 0 or less when it ran out.
	Left time.Duration
}

// Table is the partitions of a namespace, their leases, and the live
// workers that share them. Every time is the database's, so that the
// workers' clocks do not matter.
type Table struct {
	db                  *sql.DB
	partitions, workers string
}

// NewTable returns the partition table of a namespace.
func NewTable(db *sql.DB, namespace string) *Table {
	names := catalog.New(namespace)
	return &Table{db: db, partitions: names.Partitions(), workers: names.Workers()}
}

// Count returns how many partitions the namespace has.
func (t *Table) Count(ctx context.Context) (int, error) {
	var n int
	if err := t.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.partitions).Scan(&n); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, ErrNotSetUp
	}
	return n, nil
}

// Acquire takes a partition's lease for owner, for ttl, when it is free or
// its lease ran out (or owner holds it already, which starts a new epoch).
// It reports false when someone else holds it.
func (t *Table) Acquire(ctx context.Context, partition int, owner string, ttl time.Duration) (Lease, bool, error) {
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return Lease{}, false, err
	}
	defer tx.Rollback()
	var (
		holder  string
		epoch   int64
		expired bool
	)
	// SKIP LOCKED: a row locked by an append in flight, or by a writer
	// paused in the middle of one, is busy; waiting for it would hold up
	// this worker's other partitions.
	err = tx.QueryRowContext(ctx, "SELECT owner, epoch, lease_until <= UTC_TIMESTAMP(6) FROM "+t.partitions+" WHERE partition_id = ? FOR UPDATE SKIP LOCKED", partition).Scan(&holder, &epoch, &expired)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("partition %d: %w", partition, err)
	}
	if holder != "" && holder != owner && !expired {
		return Lease{}, false, nil
	}
	epoch++
	if _, err := tx.ExecContext(ctx, "UPDATE "+t.partitions+" SET owner = ?, epoch = ?, lease_until = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND WHERE partition_id = ?",
		owner, epoch, ttl.Microseconds(), partition); err != nil {
		return Lease{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return Lease{}, false, err
	}
	return Lease{Partition: partition, Owner: owner, Epoch: epoch}, true, nil
}

// Renew extends the leases owner holds on partitions by ttl, and returns
// every lease owner holds, by partition: a lease missing from the answer,
// or with another epoch, was taken over. Only the rows of partitions are
// locked, so a renewal waits for no other worker: FORCE INDEX, because on
// a table this small the optimizer may prefer a scan, which locks every
// row and waits for every append in flight.
func (t *Table) Renew(ctx context.Context, owner string, partitions []int, ttl time.Duration) (map[int]Lease, error) {
	if len(partitions) > 0 {
		args := append([]any{ttl.Microseconds(), owner}, stmt.Args(partitions)...)
		if _, err := t.db.ExecContext(ctx, "UPDATE "+t.partitions+" FORCE INDEX (PRIMARY) SET lease_until = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND WHERE owner = ? AND partition_id IN ("+stmt.Placeholders(len(partitions))+")", args...); err != nil {
			return nil, err
		}
	}
	rows, err := t.db.QueryContext(ctx, "SELECT partition_id, epoch FROM "+t.partitions+" WHERE owner = ?", owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	held := map[int]Lease{}
	for rows.Next() {
		l := Lease{Owner: owner}
		if err := rows.Scan(&l.Partition, &l.Epoch); err != nil {
			return nil, err
		}
		held[l.Partition] = l
	}
	return held, rows.Err()
}

// Release gives a lease up, if it is still the holder's, so that another
// worker can take the partition at once.
func (t *Table) Release(ctx context.Context, l Lease) error {
	_, err := t.db.ExecContext(ctx, "UPDATE "+t.partitions+" SET owner = '', lease_until = '1970-01-01 00:00:00' WHERE partition_id = ? AND owner = ? AND epoch = ?", l.Partition, l.Owner, l.Epoch)
	return err
}

// List returns every partition's head and lease.
func (t *Table) List(ctx context.Context) ([]Status, error) {
	rows, err := t.db.QueryContext(ctx, "SELECT partition_id, head, owner, epoch, TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), lease_until) FROM "+t.partitions+" ORDER BY partition_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Status
	for rows.Next() {
		var (
			s    Status
			left int64
		)
		if err := rows.Scan(&s.Partition, &s.Head, &s.Owner, &s.Epoch, &left); err != nil {
			return nil, err
		}
		s.Left = time.Duration(left) * time.Microsecond
		out = append(out, s)
	}
	return out, rows.Err()
}

// Heartbeat records that worker is alive and returns how many workers were
// seen within ttl (itself included).
func (t *Table) Heartbeat(ctx context.Context, worker string, ttl time.Duration) (int, error) {
	if _, err := t.db.ExecContext(ctx, "INSERT INTO "+t.workers+" (worker_id, seen_at) VALUES (?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE seen_at = VALUES(seen_at)", worker); err != nil {
		return 0, err
	}
	var n int
	err := t.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.workers+" WHERE seen_at > UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND", ttl.Microseconds()).Scan(&n)
	return max(n, 1), err
}

// ForgetGone forgets the workers not seen for an hour (killed, not stopped).
func (t *Table) ForgetGone(ctx context.Context) error {
	_, err := t.db.ExecContext(ctx, "DELETE FROM "+t.workers+" WHERE seen_at < UTC_TIMESTAMP(6) - INTERVAL 1 HOUR")
	return err
}

// Leave forgets a worker that stops, so the others take its share at once.
func (t *Table) Leave(ctx context.Context, worker string) error {
	_, err := t.db.ExecContext(ctx, "DELETE FROM "+t.workers+" WHERE worker_id = ?", worker)
	return err
}
