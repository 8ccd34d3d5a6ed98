package projections

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/eventstore"
)

// Watch answers, for every runner of a process, what each would otherwise
// ask the database every so often: the partitions' heads (to measure lag,
// and to skip a poll that would find nothing new) and whether a replay
// asked a projection to stand aside. It asks at most every 250 ms, one
// query for all partitions, so that what a process asks while idle does
// not grow with the partitions it holds.
type Watch struct {
	store       *eventstore.Store
	db          *sql.DB
	checkpoints *checkpoint.Store
	every       time.Duration

	mu      sync.Mutex
	heads   []int64
	headsAt time.Time
	paused  map[string]flag
}

type flag struct {
	set bool
	at  time.Time
}

// NewWatch returns the watch of a namespace's event store and checkpoints.
func NewWatch(store *eventstore.Store, db *sql.DB, namespace string) *Watch {
	return &Watch{store: store, db: db, checkpoints: checkpoint.New(namespace), every: lookEvery, paused: map[string]flag{}}
}

// Head returns a partition's head as read at most 250 ms ago.
func (w *Watch) Head(ctx context.Context, partition int) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.heads == nil || time.Since(w.headsAt) >= w.every {
		heads, err := w.store.Heads(ctx)
		if err != nil {
			return 0, err
		}
		w.heads, w.headsAt = heads, time.Now()
	}
	if partition >= len(w.heads) {
		return 0, fmt.Errorf("partition %d of %d", partition, len(w.heads))
	}
	return w.heads[partition], nil
}

// Paused reports whether a replay asks the projection to stand aside, as
// read at most 250 ms ago.
func (w *Watch) Paused(ctx context.Context, projection string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, ok := w.paused[projection]
	if !ok || time.Since(f.at) >= w.every {
		set, err := w.checkpoints.Paused(ctx, w.db, projection)
		if err != nil {
			return false, err
		}
		f = flag{set: set, at: time.Now()}
		w.paused[projection] = f
	}
	return f.set, nil
}
