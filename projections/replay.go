package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

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
	// messages is replayed in smaller batches rather than held at once.
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
	return &Replay{db: cfg.DB, store: cfg.Store, codec: cfg.Codec, es: cfg.Search, namespace: cfg.Namespace, checkpoints: checkpoint.New(cfg.Namespace), log: cfg.Log, progress: progress, BatchSize: 5000, BatchBytes: 16 << 20}
}

// target is one projection being rebuilt.
type target struct {
	name    string     // the live projection's name: "mysql" or "search"
	proj    Projection // the projection into the copy
	prepare func(ctx context.Context, lock *mysqldb.Lock) error
	swap    func(ctx context.Context, lock *mysqldb.Lock, pos int64) error
}

// MySQL rebuilds the read tables.
func (rp *Replay) MySQL(ctx context.Context) error {
	names := catalog.New(rp.namespace)
	live, next, old := names.ReadTables(), names.ReadTablesCopy("_next"), names.ReadTablesCopy("_old")
	return rp.run(ctx, target{
		name: "mysql",
		proj: newMySQLInto(next),
		prepare: func(ctx context.Context, lock *mysqldb.Lock) error {
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
			_, err = lock.Conn.ExecContext(ctx, "INSERT INTO "+next.Position+" (id, position) VALUES (1, 0)")
			return err
		},
		swap: func(ctx context.Context, lock *mysqldb.Lock, _ int64) error {
			// One RENAME TABLE swaps every table and their position at once.
			var pairs []string
			for i, t := range live.All() {
				pairs = append(pairs, t+" TO "+old.All()[i], next.All()[i]+" TO "+t)
			}
			if _, err := lock.Conn.ExecContext(ctx, "RENAME TABLE "+strings.Join(pairs, ", ")); err != nil {
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
	proj := NewSearch(rp.es, rp.namespace, rp.log, nil)
	proj.target = ix.VersionName(version)
	proj.checkpoint = "search-replay"
	return rp.run(ctx, target{
		name: "search",
		proj: proj,
		prepare: func(ctx context.Context, lock *mysqldb.Lock) error {
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
			if err := rp.checkpoints.Reset(ctx, lock.Conn, proj.checkpoint); err != nil {
				return err
			}
			return ix.Create(ctx, version, false)
		},
		swap: func(ctx context.Context, lock *mysqldb.Lock, pos int64) error {
			if err := ix.SwapAlias(ctx, current, version); err != nil {
				return err
			}
			// Had the process died between the swap and this update, the
			// live projector would re-apply some events to the new index:
			// harmless, as older versions are refused.
			if err := rp.checkpoints.Set(ctx, lock.Conn, "search", pos); err != nil {
				return err
			}
			if err := rp.checkpoints.Delete(ctx, lock.Conn, proj.checkpoint); err != nil {
				return err
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
	if err := t.prepare(ctx, lock); err != nil {
		return fmt.Errorf("prepare the %s replay: %w", t.name, err)
	}
	pos, err := t.proj.Checkpoint(ctx, lock)
	if err != nil {
		return err
	}
	if pos > 0 {
		rp.log.Info("resuming an unfinished replay", "projection", t.name, "position", pos)
	}
	// Catch up while the live projector runs...
	pos, err = rp.apply(ctx, lock, t, pos, 2*int64(rp.BatchSize))
	if err != nil {
		return err
	}
	// ...then pause it for the last events and the swap.
	if err := rp.checkpoints.Pause(ctx, lock.Conn, t.name); err != nil {
		return err
	}
	defer rp.checkpoints.Resume(context.WithoutCancel(ctx), lock.Conn, t.name)
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	live, err := mysqldb.AcquireLock(waitCtx, rp.db, names.ProjectionLock(t.name))
	if err != nil {
		return fmt.Errorf("pause the live %s projector: %w", t.name, err)
	}
	defer live.Release()
	if pos, err = rp.apply(ctx, lock, t, pos, 0); err != nil {
		return err
	}
	if err := t.swap(ctx, lock, pos); err != nil {
		return fmt.Errorf("swap in the rebuilt %s projection: %w", t.name, err)
	}
	rp.log.Info("replay swapped in", "projection", t.name, "position", pos)
	return nil
}

// apply folds events into the copy until it is within slack of the head.
func (rp *Replay) apply(ctx context.Context, lock *mysqldb.Lock, t target, pos, slack int64) (int64, error) {
	for {
		head, err := rp.store.Head(ctx)
		if err != nil {
			return pos, err
		}
		if head-pos <= slack {
			return pos, nil
		}
		stored, err := rp.store.Read(ctx, pos, rp.BatchSize, rp.BatchBytes)
		if err != nil {
			return pos, err
		}
		batch := make([]Event, len(stored))
		for i, s := range stored {
			env, err := rp.codec.Decode(s.Record)
			if err != nil {
				return pos, fmt.Errorf("event at position %d: %w", s.Position, err)
			}
			batch[i] = Event{Position: s.Position, RecordedAt: s.RecordedAt, Envelope: env}
		}
		if err := t.proj.Apply(ctx, lock, batch); err != nil {
			return pos, err
		}
		pos = batch[len(batch)-1].Position
		rp.progress(t.name, pos, head)
	}
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
