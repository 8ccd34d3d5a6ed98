package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/readmodel"
	"github.com/chatsys/chat/searchindex"
)

// partitions is how many partitions the namespaces of these tests have.
const partitions = 4

// tokenOf is the application whose events partition p holds in these tests.
func tokenOf(p int) string { return strings.Repeat(string(rune('a'+p)), 26) }

// span is partition p's batch of the events at positions from to to of its
// log envs (positions count from 1).
func span(p int, envs []events.Envelope, from, to int) []projections.Event {
	var out []projections.Event
	for pos := from; pos <= to; pos++ {
		out = append(out, projections.Event{Partition: p, Position: int64(pos), Envelope: envs[pos-1]})
	}
	return out
}

// migrated sets up a namespace of partitions partitions in the test's
// database, and deletes its search index when the test ends.
func migrated(t *testing.T, db *sql.DB, es *searchindex.Client, ns string) {
	t.Helper()
	if _, err := mysqldb.Migrate(context.Background(), db, ns, partitions); err != nil {
		t.Fatal(err)
	}
	if es != nil {
		index := searchindex.NewIndex(es, ns)
		t.Cleanup(func() { _ = index.Delete(context.Background()) })
	}
}

func openSearch(t *testing.T, url string) *searchindex.Client {
	t.Helper()
	es, err := searchindex.Open(searchindex.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// newSearch returns the search projection of namespace ns.
func newSearch(es *searchindex.Client, db *sql.DB, ns string, log *slog.Logger) *projections.Search {
	return projections.NewSearch(projections.SearchConfig{Index: es, DB: db, Store: eventstore.New(db, ns), Namespace: ns, Log: log})
}

// positions returns every partition's checkpoint of a projection.
func positions(t *testing.T, proj projections.Projection) []int64 {
	t.Helper()
	out := make([]int64, partitions)
	for p := range out {
		pos, err := proj.Checkpoint(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = pos
	}
	return out
}

// appView is what the read side shows of an application: its snapshot, or
// "absent".
func appView(t *testing.T, q *readmodel.Queries, token string) string {
	t.Helper()
	if _, err := q.Application(context.Background(), token); err != nil {
		if e := apperr.As(err); e != nil && e.Kind == apperr.KindNotFound {
			return "absent"
		}
		t.Fatal(err)
	}
	return snapshot(t, q, token)
}

// step is one Apply of the tests below: each partition's batch runs from
// its position in from to the end of its log, after each partition's
// events up to before were applied alone.
type step struct {
	name   string
	before map[int]int
	from   map[int]int
	// moved: the Apply fails with ErrCheckpointMoved and applies nothing.
	moved bool
	want  []int64 // every partition's checkpoint after
}

// batchesOf returns a step's batches, in a partition order of their own.
func (s step) batchesOf(logs [][]events.Envelope) [][]projections.Event {
	var out [][]projections.Event
	for p, from := range s.from {
		out = append(out, span(p, logs[p], from, len(logs[p])))
	}
	return out
}

// TestMySQLAppliesPartitionsTogether: one Apply of batches of several
// partitions stores every batch's rows, as each applied alone would, and
// moves every partition's position, skipping what a position has passed;
// when one batch does not follow on from its partition's position, it
// fails with ErrCheckpointMoved and applies nothing of any batch.
func TestMySQLAppliesPartitionsTogether(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	logs := make([][]events.Envelope, partitions)
	for p := range logs {
		logs[p] = history(tokenOf(p))
	}
	n := int64(len(logs[0]))

	// What each application looks like applied alone.
	ref := cfg.Namespace + "_ref"
	migrated(t, db, nil, ref)
	want := make([]string, partitions)
	for p := range logs {
		if err := projections.NewMySQL(db, ref).Apply(ctx, [][]projections.Event{span(p, logs[p], 1, int(n))}); err != nil {
			t.Fatal(err)
		}
		want[p] = appView(t, readmodel.NewQueries(db, ref), tokenOf(p))
	}

	for i, s := range []step{
		{name: "three partitions", from: map[int]int{0: 1, 1: 1, 2: 1}, want: []int64{n, n, n, 0}},
		{name: "one applied already, one in part", before: map[int]int{1: int(n), 2: 6},
			from: map[int]int{0: 1, 1: 3, 2: 4}, want: []int64{n, n, n, 0}},
		{name: "one beyond its position", before: map[int]int{2: 4},
			from: map[int]int{0: 1, 1: 1, 2: 7}, moved: true, want: []int64{0, 0, 4, 0}},
	} {
		t.Run(s.name, func(t *testing.T) {
			ns := fmt.Sprintf("%s_s%d", cfg.Namespace, i)
			migrated(t, db, nil, ns)
			proj, q := projections.NewMySQL(db, ns), readmodel.NewQueries(db, ns)
			for p, to := range s.before {
				if err := proj.Apply(ctx, [][]projections.Event{span(p, logs[p], 1, to)}); err != nil {
					t.Fatal(err)
				}
			}
			before := make([]string, partitions)
			for p := range before {
				before[p] = appView(t, q, tokenOf(p))
			}
			err := proj.Apply(ctx, s.batchesOf(logs))
			if moved := errors.Is(err, projections.ErrCheckpointMoved); moved != s.moved || (err != nil && !moved) {
				t.Fatalf("Apply: %v, want moved %v", err, s.moved)
			}
			if got := positions(t, proj); !slices.Equal(got, s.want) {
				t.Errorf("positions %v, want %v", got, s.want)
			}
			for p := range partitions {
				got := appView(t, q, tokenOf(p))
				switch {
				case s.moved && got != before[p]:
					t.Errorf("partition %d changed by a failed Apply:\n%s\nwas:\n%s", p, got, before[p])
				case !s.moved && s.want[p] == n && got != want[p]:
					t.Errorf("partition %d:\n%s\nwant:\n%s", p, got, want[p])
				case !s.moved && s.want[p] == 0 && got != "absent":
					t.Errorf("partition %d, given no batch, shows:\n%s", p, got)
				}
			}
		})
	}
}

// documentsOf returns the documents of an application among an index's.
func documentsOf(all map[string]string, token string) map[string]string {
	out := map[string]string{}
	for id, body := range all {
		if strings.HasPrefix(id, token+":") {
			out[id] = body
		}
	}
	return out
}

// TestSearchAppliesPartitionsTogether: one Apply of batches of several
// partitions indexes every batch's messages, each with its newest body, and
// moves every partition's checkpoint; when one batch does not follow on
// from its partition's checkpoint, it fails with ErrCheckpointMoved and
// moves no checkpoint.
func TestSearchAppliesPartitionsTogether(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	es := openSearch(t, cfg.ElasticsearchURL)
	ctx := context.Background()
	logs := make([][]events.Envelope, partitions)
	for p := range logs {
		logs[p] = searchHistory(tokenOf(p))
	}
	n := int64(len(logs[0]))

	for i, s := range []step{
		{name: "three partitions", from: map[int]int{0: 1, 1: 1, 2: 1}, want: []int64{n, n, n, 0}},
		{name: "one in part", before: map[int]int{1: 3},
			from: map[int]int{0: 1, 1: 3, 2: 1}, want: []int64{n, n, n, 0}},
		{name: "one beyond its checkpoint", before: map[int]int{2: 4},
			from: map[int]int{0: 1, 1: 1, 2: 7}, moved: true, want: []int64{0, 0, 4, 0}},
	} {
		t.Run(s.name, func(t *testing.T) {
			ns := fmt.Sprintf("%s_s%d", cfg.Namespace, i)
			migrated(t, db, es, ns)
			search := newSearch(es, db, ns, testenv.Logger(t, slog.LevelWarn))
			positions(t, search) // creates the index
			for p, to := range s.before {
				if err := search.Apply(ctx, [][]projections.Event{span(p, logs[p], 1, to)}); err != nil {
					t.Fatal(err)
				}
			}
			err := search.Apply(ctx, s.batchesOf(logs))
			if moved := errors.Is(err, projections.ErrCheckpointMoved); moved != s.moved || (err != nil && !moved) {
				t.Fatalf("Apply: %v, want moved %v", err, s.moved)
			}
			if got := positions(t, search); !slices.Equal(got, s.want) {
				t.Errorf("checkpoints %v, want %v", got, s.want)
			}
			if s.moved {
				return // what was indexed is indexed again when the batches are
			}
			all := indexed(t, cfg.ElasticsearchURL, searchindex.NewIndex(es, ns).Alias)
			for p := range partitions {
				want := map[string]string{}
				if s.want[p] == n {
					want = foldedWant(tokenOf(p))
				}
				if got := documentsOf(all, tokenOf(p)); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("partition %d: the index holds\n%v\nwant\n%v", p, got, want)
				}
			}
		})
	}
}

// gate is a projection that holds its first Apply until released, so that
// other callers queue behind it, and notes the partitions of every Apply.
type gate struct {
	projections.Projection
	entered, release chan struct{}
	once             sync.Once

	mu      sync.Mutex
	applies [][]int
}

func newGate(p projections.Projection) *gate {
	return &gate{Projection: p, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) Apply(ctx context.Context, batches [][]projections.Event) error {
	var parts []int
	for _, b := range batches {
		parts = append(parts, b[0].Partition)
	}
	slices.Sort(parts)
	g.mu.Lock()
	g.applies = append(g.applies, parts)
	g.mu.Unlock()
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Projection.Apply(ctx, batches)
}

// TestApplierAppliesTheOthers: runners hand their partitions' batches to
// one Applier while it is busy, so that it applies them together; one of
// them no longer follows on from its checkpoint, or holds a value the read
// tables refuse. That one fails, with ErrCheckpointMoved in the first case,
// and the others are applied.
func TestApplierAppliesTheOthers(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	es := openSearch(t, cfg.ElasticsearchURL)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		history func(token string) []events.Envelope
		proj    func(ns string) projections.Projection
		// refused: the bad batch names its application too long a name,
		// rather than starting beyond its checkpoint.
		refused bool
	}{
		{"mysql", history, func(ns string) projections.Projection { return projections.NewMySQL(db, ns) }, false},
		{"mysql_refused", history, func(ns string) projections.Projection { return projections.NewMySQL(db, ns) }, true},
		{"search", searchHistory, func(ns string) projections.Projection {
			return newSearch(es, db, ns, testenv.Logger(t, slog.LevelWarn))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := cfg.Namespace + "_" + tc.name
			migrated(t, db, es, ns)
			proj := tc.proj(ns)
			positions(t, proj)
			logs := make([][]events.Envelope, partitions)
			for p := range logs {
				logs[p] = tc.history(tokenOf(p))
			}
			n := int64(len(logs[0]))
			const bad = 1
			badFrom, badAt := 7, int64(4)
			if tc.refused {
				logs[bad][0].Event = events.ApplicationCreated{Token: tokenOf(bad), Name: strings.Repeat("x", 300)}
				badFrom, badAt = 1, 0
			} else if err := proj.Apply(ctx, [][]projections.Event{span(bad, logs[bad], 1, 4)}); err != nil {
				t.Fatal(err)
			}

			g := newGate(proj)
			applier := projections.NewApplier(g)
			errs := make([]error, partitions)
			var wg sync.WaitGroup
			apply := func(p, from int) {
				defer wg.Done()
				// Bounded as a runner bounds its apply.
				ctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				errs[p] = applier.Apply(ctx, span(p, logs[p], from, int(n)), 1000)
			}
			// Partition 3's batch is applied first and held; the others
			// queue behind it meanwhile.
			wg.Add(1)
			go apply(3, 1)
			<-g.entered
			for p, from := range map[int]int{0: 1, bad: badFrom, 2: 1} {
				wg.Add(1)
				go apply(p, from)
			}
			time.Sleep(300 * time.Millisecond)
			close(g.release)
			wg.Wait()

			for p, err := range errs {
				switch {
				case p != bad && err != nil:
					t.Errorf("partition %d: %v", p, err)
				case p == bad && err == nil:
					t.Errorf("partition %d: applied", p)
				case p == bad && errors.Is(err, projections.ErrCheckpointMoved) == tc.refused:
					t.Errorf("partition %d: %v, want moved %v", p, err, !tc.refused)
				}
			}
			if got, want := positions(t, proj), []int64{n, badAt, n, n}; !slices.Equal(got, want) {
				t.Errorf("checkpoints %v, want %v", got, want)
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			if !slices.ContainsFunc(g.applies, func(parts []int) bool { return slices.Equal(parts, []int{0, bad, 2}) }) {
				t.Errorf("applies of partitions %v; the queued batches were never applied together", g.applies)
			}
		})
	}
}

// TestRunnersShareAnApplier: the runners of every partition, sharing one
// Applier, one Reader and one Watch, project each partition's log to its
// head, as they would alone, and a runner nobody wakes finds by its poll
// what was appended since.
func TestRunnersShareAnApplier(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	codec := events.NewCodec()
	store := eventstore.New(db, cfg.Namespace)
	ref := cfg.Namespace + "_ref"
	migrated(t, db, nil, ref)
	want := make([]string, partitions)
	for p := range partitions {
		envs := history(tokenOf(p))
		recs := make([]events.Record, len(envs))
		for i, env := range envs {
			var err error
			if recs[i], err = codec.Encode(env); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := testenv.Appender(t, db, cfg.Namespace, p).Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if err := projections.NewMySQL(db, ref).Apply(ctx, [][]projections.Event{span(p, envs, 1, len(envs))}); err != nil {
			t.Fatal(err)
		}
		want[p] = appView(t, readmodel.NewQueries(db, ref), tokenOf(p))
	}
	heads, err := store.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}

	g := newGate(projections.NewMySQL(db, cfg.Namespace))
	close(g.release)
	rcfg := projections.RunnerConfig{
		Store: store, Codec: codec, DB: db, Namespace: cfg.Namespace,
		Metrics: projections.NewRunnerMetrics(nil), Log: testenv.Logger(t, slog.LevelWarn),
		Applier: projections.NewApplier(g),
		Reader:  projections.NewReader(store),
		Watch:   projections.NewWatch(store, db, cfg.Namespace),
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for p := range partitions {
		r := projections.NewRunner(g, p, rcfg)
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(runCtx) }()
		r.Notify()
	}
	testenv.Eventually(t, 30*time.Second, "every partition projected to its head", func() bool {
		return slices.Equal(positions(t, g), heads)
	})
	// Appended with no runner woken: the poll finds it.
	late, err := codec.Encode(events.Envelope{EventID: uuid.New(), StreamVersion: 1, OccurredAt: events.Now(),
		Event: events.ApplicationCreated{Token: strings.Repeat("z", 26), Name: "late"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.Appender(t, db, cfg.Namespace, 0).Append(ctx, []events.Record{late}); err != nil {
		t.Fatal(err)
	}
	heads[0]++
	testenv.Eventually(t, 30*time.Second, "the late event projected by the poll", func() bool {
		return slices.Equal(positions(t, g), heads)
	})
	stop()
	wg.Wait()
	q := readmodel.NewQueries(db, cfg.Namespace)
	for p := range partitions {
		if got := appView(t, q, tokenOf(p)); got != want[p] {
			t.Errorf("partition %d:\n%s\nwant:\n%s", p, got, want[p])
		}
	}
}

// TestAppliesWaitForNoOtherPartition: a projection that applies many
// partitions at once never waits for the rows of another partition, such
// as a projector paused in the middle of its transaction holds.
func TestAppliesWaitForNoOtherPartition(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	// A lock wait fails after a second instead of 50.
	dsn, err := mysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	dsn.Params = map[string]string{"innodb_lock_wait_timeout": "1"}
	cfg.MySQLDSN = dsn.FormatDSN()
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	// Many partitions: the optimizer may scan a small table rather than
	// look its rows up.
	ns := cfg.Namespace + "_many"
	if _, err := mysqldb.Migrate(ctx, db, ns, 64); err != nil {
		t.Fatal(err)
	}
	const held = 5
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT position FROM "+ns+"_read_position WHERE id = ? FOR UPDATE", held); err != nil {
		t.Fatal(err)
	}
	checkpoints := checkpoint.New(ns)
	if _, err := checkpoints.Lock(ctx, tx, "search", held); err != nil {
		t.Fatal(err)
	}
	var (
		batches [][]projections.Event
		parts   = map[int]int64{}
	)
	for p := 8; p < 48; p++ {
		log := history(fmt.Sprintf("tok%023d", p))
		batches = append(batches, span(p, log, 1, len(log)))
		parts[p] = int64(len(log))
	}
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"mysql", func() error { return projections.NewMySQL(db, ns).Apply(ctx, batches) }},
		{"checkpoints", func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := checkpoints.LockAll(ctx, tx, "search", slices.Collect(maps.Keys(parts))); err != nil {
				return err
			}
			if err := checkpoints.AdvanceAll(ctx, tx, "search", parts); err != nil {
				return err
			}
			return tx.Commit()
		}},
	} {
		if err := tc.do(); err != nil {
			t.Errorf("%s: apply partitions 8..47 while partition %d's rows are locked: %v", tc.name, held, err)
		}
	}
}
