package partition_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/partition"
)

// running records which worker runs which partition.
type running struct {
	mu sync.Mutex
	by map[int]string
}

func (r *running) work(owner string) partition.Work {
	return func(ctx context.Context, l partition.Lease) error {
		r.mu.Lock()
		r.by[l.Partition] = owner
		r.mu.Unlock()
		<-ctx.Done()
		r.mu.Lock()
		if r.by[l.Partition] == owner {
			delete(r.by, l.Partition)
		}
		r.mu.Unlock()
		return nil
	}
}

// shares returns how many partitions each worker runs, and how many run.
func (r *running) shares() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, o := range r.by {
		out[o]++
	}
	return out, len(r.by)
}

// TestBalancersShareAndTakeOver: workers split the partitions evenly, a
// worker that stops hands its share over at once, and one that is cut off
// from the database loses its share to the others once its leases run out.
func TestBalancersShareAndTakeOver(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	ns := cfg.Namespace + "_b"
	const n = 12
	if _, err := mysqldb.Migrate(ctx, db, ns, n); err != nil {
		t.Fatal(err)
	}
	const ttl = time.Second
	r := &running{by: map[int]string{}}
	start := func(owner string, db *sql.DB) context.CancelFunc {
		ctx, cancel := context.WithCancel(ctx)
		b := partition.NewBalancer(partition.BalancerConfig{
			Table: partition.NewTable(db, ns), Owner: owner, TTL: ttl,
			Work: r.work(owner), Log: testenv.Logger(t, slog.LevelWarn),
		})
		done := make(chan struct{})
		go func() { defer close(done); _ = b.Run(ctx) }()
		return func() { cancel(); <-done }
	}
	want := func(what string, shares map[string]int) {
		t.Helper()
		testenv.Eventually(t, 15*time.Second, what, func() bool {
			got, total := r.shares()
			return total == n && fmt.Sprint(got) == fmt.Sprint(shares)
		})
	}

	stopA := start("a", db)
	want("one worker runs every partition", map[string]int{"a": n})
	stopB := start("b", db)
	cutOff, err := mysqldb.Open(cfg.MySQLDSN, 4)
	if err != nil {
		t.Fatal(err)
	}
	stopC := start("c", cutOff)
	want("three workers share the partitions evenly", map[string]int{"a": 4, "b": 4, "c": 4})

	stopB()
	want("a worker that stops hands its share to the others", map[string]int{"a": 6, "c": 6})

	began := time.Now()
	cutOff.Close() // c can no longer renew: it stops, and its leases run out
	want("a worker cut off from the database loses its share", map[string]int{"a": n})
	t.Logf("partitions of a cut-off worker taken over in %s (lease %s)", time.Since(began).Round(10*time.Millisecond), ttl)
	stopC()
	stopA()

	list, err := partition.NewTable(db, ns).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, s := range list {
		owners = append(owners, s.Owner)
	}
	sort.Strings(owners)
	if owners[len(owners)-1] != "" {
		t.Errorf("leases held after every worker stopped: %v", owners)
	}
}

// TestPausedAppendDoesNotHoldThePartition: a writer paused in the middle of
// an append transaction holds its partition's row; on MariaDB the server
// ends its connection once it has sat idle for idle_transaction_timeout, and
// another worker takes the partition over.
func TestPausedAppendDoesNotHoldThePartition(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	ctx := context.Background()
	probe := testenv.DB(t, cfg)
	if !mysqldb.HasVariable(ctx, probe, mysqldb.IdleTransactionTimeout) {
		t.Skip("the server has no idle_transaction_timeout (MySQL): a paused writer holds its partition until it resumes")
	}
	paused, err := mysqldb.OpenWith(cfg.MySQLDSN, 2, map[string]string{mysqldb.IdleTransactionTimeout: "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer paused.Close()
	first, ok, err := partition.NewTable(paused, cfg.Namespace).Acquire(ctx, 0, "first", 100*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("first lease: %v, %v", ok, err)
	}
	// The first writer begins an append, locks the row, and stops there.
	tx, err := paused.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var epoch int64
	if err := tx.QueryRowContext(ctx, "SELECT epoch FROM "+cfg.Namespace+"_partitions WHERE partition_id = 0 FOR UPDATE").Scan(&epoch); err != nil || epoch != first.Epoch {
		t.Fatalf("lock the row: epoch %d, %v", epoch, err)
	}
	time.Sleep(200 * time.Millisecond) // the lease runs out
	table := partition.NewTable(probe, cfg.Namespace)
	if _, ok, err := table.Acquire(ctx, 0, "second", time.Minute); err != nil || ok {
		t.Fatalf("taken while the paused append holds the row: %v, %v", ok, err)
	}
	began := time.Now()
	testenv.Eventually(t, 10*time.Second, "the partition taken over", func() bool {
		_, ok, err := table.Acquire(ctx, 0, "second", time.Minute)
		return err == nil && ok
	})
	t.Logf("taken over %s after the lease ran out", time.Since(began).Round(100*time.Millisecond))
	if err := tx.Commit(); err == nil {
		t.Fatal("the paused transaction committed after its connection was ended")
	}
}
