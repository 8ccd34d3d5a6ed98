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
