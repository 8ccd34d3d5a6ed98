package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/searchindex"
)

// ErrReplayRunning means another replay of the same projection holds its lock.
var ErrReplayRunning = errors.New("another replay of this projection is running")

// Replay rebuilds a projection from the event store while the system keeps
// serving: it builds a new copy (shadow tables, a new index version) from
// position 0, pauses the live projector only for the last events, swaps the
// copy in atomically, and lets the live projector go on from the copy's
// position. A replay that dies resumes where it stopped.
type Replay struct {
	db        *sql.DB
	store     *eventstore.Store
	codec     *events.Codec
	es        *searchindex.Client
	namespace string
	// checkpoints hold a search copy's progress and the live projector's
	// pause flag.
	checkpoints *checkpoint.Store
	log         *slog.Logger
	progress    func(label string, done, total int64)
	// BatchSize is the most events read and applied at a time.
	BatchSize int
	// BatchBytes caps the payload bytes of a batch, so that a log of large
	// messages is replayed in smaller batches rather than held at once. Two
	// batches are held at a time: one applied, the next read meanwhile.
	BatchBytes int
	// Restart discards a previous unfinished replay instead of resuming it.
	Restart bool
}

// ReplayConfig is what a replay needs.
type ReplayConfig struct {
	DB    *sql.DB
	Store *eventstore.Store
	Codec *events.Codec
	// Search is the Elasticsearch client; nil when only MySQL is replayed.
	Search    *searchindex.Client
	Namespace string
	Log       *slog.Logger
	// Progress (optional) is called after every batch.
	Progress func(label string, done, total int64)
}

// NewReplay returns a replay.
func NewReplay(cfg ReplayConfig) *Replay {
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	return &Replay{db: cfg.DB, store: cfg.Store, codec: cfg.Codec, es: cfg.Search, namespace: cfg.Namespace, checkpoints: checkpoint.New(cfg.Namespace), log: cfg.Log, progress: progress, BatchSize: 5000, BatchBytes: 8 << 20}
}

// target is one projection being rebuilt.
type target struct {
	name    string     // the live projection's name: "mysql" or "search"
	proj    Projection // the projection into the copy
	prepare func(ctx context.Context, lock *mysqldb.Lock, partitions int) error
	// swap puts the copy live; positions are where it is in each partition.
	swap func(ctx context.Context, lock *mysqldb.Lock, positions []int64) error
}

// MySQL rebuilds the read tables.
func (rp *Replay) MySQL(ctx context.Context) error {
	names := catalog.New(rp.namespace)
	live, next, old := names.ReadTables(), names.ReadTablesCopy("_next"), names.ReadTablesCopy("_old")
	return rp.run(ctx, target{
		name: "mysql",
		proj: newMySQLInto(rp.db, next),
		prepare: func(ctx context.Context, lock *mysqldb.Lock, partitions int) error {
			var exists int
			err := lock.Conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", next.Position).Scan(&exists)
			if err != nil {
				return err
			}
			if exists == 1 && !rp.Restart {
				return nil // resume
			}
			for _, t := range next.All() {
				if _, err := lock.Conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
					return err
				}
			}
			for i, t := range live.All() {
				if _, err := lock.Conn.ExecContext(ctx, "CREATE TABLE "+next.All()[i]+" LIKE "+t); err != nil {
					return err
				}
			}
			for p := range partitions {
				if _, err := lock.Conn.ExecContext(ctx, "INSERT INTO "+next.Position+" (id, position) VALUES (?, 0)", p); err != nil {
					return err
				}
			}
			return nil
		},
		swap: func(ctx context.Context, lock *mysqldb.Lock, _ []int64) error {
			// One RENAME TABLE swaps every table and their position at once.
			var pairs []string
			for i, t := range live.All() {
				pairs = append(pairs, t+" TO "+old.All()[i], next.All()[i]+" TO "+t)
			}
			if err := mysqldb.Retried(ctx, func(ctx context.Context) error {
				_, err := lock.Conn.ExecContext(ctx, "RENAME TABLE "+strings.Join(pairs, ", "))
				return err
			}); err != nil {
				return err
			}
			for _, t := range old.All() {
				if _, err := lock.Conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
					return err
				}
			}
			return nil
		},
	})
}

// Search rebuilds the search index into a new index version.
func (rp *Replay) Search(ctx context.Context) error {
	ix := searchindex.NewIndex(rp.es, rp.namespace)
	current, err := ix.Current(ctx)
	if err != nil {
		return err
	}
	version := current + 1
	proj := NewSearch(SearchConfig{Index: rp.es, DB: rp.db, Store: rp.store, Namespace: rp.namespace, Log: rp.log})
	proj.target = ix.VersionName(version)
	proj.checkpoint = "search-replay"
	return rp.run(ctx, target{
		name: "search",
		proj: proj,
		prepare: func(ctx context.Context, lock *mysqldb.Lock, partitions int) error {
			exists, err := ix.Exists(ctx, version)
			if err != nil {
				return err
			}
			if exists && !rp.Restart {
				return nil // resume
			}
			if exists {
				if err := ix.DeleteVersion(ctx, version); err != nil {
					return err
				}
			}
			for p := range partitions {
				if err := mysqldb.Retried(ctx, func(ctx context.Context) error {
					return rp.checkpoints.Reset(ctx, lock.Conn, proj.checkpoint, p)
				}); err != nil {
					return err
				}
			}
			return ix.Create(ctx, version, false)
		},
		swap: func(ctx context.Context, lock *mysqldb.Lock, positions []int64) error {
			if err := ix.SwapAlias(ctx, current, version); err != nil {
				return err
			}
			// Had the process died between the swap and these updates, the
			// live projector would re-apply some events to the new index:
			// harmless, as older versions are refused.
			for p, pos := range positions {
				if err := mysqldb.Retried(ctx, func(ctx context.Context) error {
					return rp.checkpoints.Set(ctx, lock.Conn, "search", p, pos)
				}); err != nil {
					return err
				}
				if err := mysqldb.Retried(ctx, func(ctx context.Context) error {
					return rp.checkpoints.Delete(ctx, lock.Conn, proj.checkpoint, p)
				}); err != nil {
					return err
				}
			}
			if current > 0 {
				return ix.DeleteVersion(ctx, current)
			}
			return nil
		},
	})
}

func (rp *Replay) run(ctx context.Context, t target) error {
	names := catalog.New(rp.namespace)
	lock, err := tryLock(ctx, rp.db, names.ReplayLock(t.name))
	if err != nil {
		return err
	}
	defer lock.Release()
	heads, err := rp.store.Heads(ctx)
	if err != nil {
		return err
	}
	if err := t.prepare(ctx, lock, len(heads)); err != nil {
		return fmt.Errorf("prepare the %s replay: %w", t.name, err)
	}
	positions := make([]int64, len(heads))
	resumed := int64(0)
	for p := range positions {
		if positions[p], err = t.proj.Checkpoint(ctx, p); err != nil {
			return err
		}
		resumed += positions[p]
	}
	if resumed > 0 {
		rp.log.Info("resuming an unfinished replay", "projection", t.name, "events", resumed)
	}
	// Catch up while the live projectors run...
	if err := rp.apply(ctx, t, positions, 2*int64(rp.BatchSize)); err != nil {
		return err
	}
	// ...then pause them for the last events and the swap. A live
	// projector that has not seen the pause yet is harmless: a projection
	// refuses a batch that does not follow on from its checkpoint, so one
	// that had got ahead of the copy starts again from the copy's positions.
	// The checkpoint rows are the live projectors' too, whose transactions
	// lock them: a statement of the replay's may be a deadlock's victim.
	if err := mysqldb.Retried(ctx, func(ctx context.Context) error { return rp.checkpoints.Pause(ctx, lock.Conn, t.name) }); err != nil {
		return err
	}
	defer func() {
		_ = mysqldb.Retried(context.WithoutCancel(ctx), func(ctx context.Context) error { return rp.checkpoints.Resume(ctx, lock.Conn, t.name) })
	}()
	if err := rp.apply(ctx, t, positions, 0); err != nil {
		return err
	}
	if err := t.swap(ctx, lock, positions); err != nil {
		return fmt.Errorf("swap in the rebuilt %s projection: %w", t.name, err)
	}
	total := int64(0)
	for _, pos := range positions {
		total += pos
	}
	rp.log.Info("replay swapped in", "projection", t.name, "events", total, "partitions", len(positions))
	return nil
}

// apply folds events into the copy until, in every partition, it is within
// slack of the head. The next batch is read and decoded while the one before
// it is applied, so the database applies one batch while this process
// decodes the next. Progress counts events over all partitions.
func (rp *Replay) apply(ctx context.Context, t target, positions []int64, slack int64) error {
	g, ctx := errgroup.WithContext(ctx)
	batches := make(chan readBatch)
	read := slices.Clone(positions)
	g.Go(func() error {
		defer close(batches)
		return rp.readAhead(ctx, read, slack, batches)
	})
	g.Go(func() error { return rp.applyAll(ctx, t, positions, batches) })
	return g.Wait()
}

// applyAll applies the batches in, moving positions on.
func (rp *Replay) applyAll(ctx context.Context, t target, positions []int64, in <-chan readBatch) error {
	for b := range in {
		if err := t.proj.Apply(ctx, [][]Event{b.events}); err != nil {
			return err
		}
		positions[b.events[0].Partition] = b.events[len(b.events)-1].Position
		var done int64
		for _, pos := range positions {
			done += pos
		}
		rp.progress(t.name, done, b.total)
	}
	return nil
}

// readBatch is a partition's batch, decoded, with the events in every
// partition's log when it was read.
type readBatch struct {
	events []Event
	total  int64
}

// readAhead reads batches after positions, moving them on, until every
// partition is within slack of its head, and hands each to out.
func (rp *Replay) readAhead(ctx context.Context, positions []int64, slack int64, out chan<- readBatch) error {
	for {
		heads, err := rp.store.Heads(ctx)
		if err != nil {
			return err
		}
		var total int64
		for _, h := range heads {
			total += h
		}
		behind := false
		for p, pos := range positions {
			if heads[p]-pos <= slack {
				continue
			}
			behind = true
			batch, err := rp.read(ctx, p, pos)
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				return fmt.Errorf("partition %d: no event after position %d, short of its head %d", p, pos, heads[p])
			}
			select {
			case out <- readBatch{batch, total}:
			case <-ctx.Done():
				return ctx.Err()
			}
			positions[p] = batch[len(batch)-1].Position
		}
		if !behind {
			return nil
		}
	}
}

// read returns a partition's next batch after pos, decoded.
func (rp *Replay) read(ctx context.Context, p int, pos int64) ([]Event, error) {
	stored, err := rp.store.Read(ctx, p, pos, rp.BatchSize, rp.BatchBytes)
	if err != nil {
		return nil, err
	}
	batch := make([]Event, len(stored))
	for i, s := range stored {
		env, err := rp.codec.Decode(s.Record)
		if err != nil {
			return nil, fmt.Errorf("event at partition %d position %d: %w", p, s.Position, err)
		}
		batch[i] = Event{Partition: p, Position: s.Position, RecordedAt: s.RecordedAt, Envelope: env}
	}
	return batch, nil
}

// tryLock takes a named lock without waiting.
func tryLock(ctx context.Context, db *sql.DB, name string) (*mysqldb.Lock, error) {
	lockCtx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	lock, err := mysqldb.AcquireLock(lockCtx, db, name)
	if err != nil {
		if ctx.Err() == nil {
			return nil, ErrReplayRunning
		}
		return nil, err
	}
	return lock, nil
}
