package numbering

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/keyslot"
	"github.com/chatsys/chat/rediscluster"
)

// Master is what one Redis master holds of the numbering epochs. A slot's
// epoch is the run id of the master that sealed it: a master that restarted
// or took over from its replica runs under a new id, so its slots show as
// stale, and slots whose data was lost show as missing.
type Master struct {
	Addr  string
	RunID string
	// Slots are the slots the master serves; Epochs[i] is the epoch of
	// Slots[i], "" when it is missing.
	Slots  []int
	Epochs []string
}

// Sealed lists the slots sealed by the master as it runs now.
func (m Master) Sealed() []int { return m.filter(func(e string) bool { return e == m.RunID }) }

// Missing lists the slots whose epoch is gone.
func (m Master) Missing() []int { return m.filter(func(e string) bool { return e == "" }) }

// Stale lists the slots sealed under another run id.
func (m Master) Stale() []int {
	return m.filter(func(e string) bool { return e != "" && e != m.RunID })
}

func (m Master) filter(keep func(epoch string) bool) []int {
	var out []int
	for i, e := range m.Epochs {
		if keep(e) {
			out = append(out, m.Slots[i])
		}
	}
	return out
}

// Masters reads, on each master, its run id and the epochs of the slots it
// serves, sorted by address.
func (s *Store) Masters(ctx context.Context) ([]Master, error) {
	var (
		mu  sync.Mutex
		out []Master
	)
	err := rediscluster.ForEachMaster(ctx, s.rdb, func(ctx context.Context, m rediscluster.Master) error {
		pipe := m.Client.Pipeline()
		info := pipe.Info(ctx, "server")
		gets := make([]*redis.StringCmd, len(m.Slots))
		for i, slot := range m.Slots {
			gets[i] = pipe.Get(ctx, s.names.EpochKey(slot))
		}
		// A missing key is a redis.Nil among the answers, not a failure.
		_, _ = pipe.Exec(ctx)
		if err := info.Err(); err != nil {
			return fmt.Errorf("%s: %w", m.Addr, err)
		}
		got := Master{Addr: m.Addr, RunID: runID(info.Val()), Slots: m.Slots, Epochs: make([]string, len(m.Slots))}
		for i, g := range gets {
			if err := g.Err(); err != nil && !errors.Is(err, redis.Nil) {
				return fmt.Errorf("%s: %w", m.Addr, err)
			}
			got.Epochs[i] = g.Val()
		}
		mu.Lock()
		out = append(out, got)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	slices.SortFunc(out, func(a, b Master) int { return strings.Compare(a.Addr, b.Addr) })
	return out, nil
}

func runID(info string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "run_id:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Invalidate deletes the epochs of slots, refusing every number in them
// until they are sealed again.
func (s *Store) Invalidate(ctx context.Context, slots []int) error {
	pipe := s.rdb.Pipeline()
	for _, slot := range slots {
		pipe.Del(ctx, s.names.EpochKey(slot))
	}
	_, err := pipe.Exec(ctx)
	return wrap(err)
}

// Seal sets the epochs of slots to the run id of the master serving them:
// from then on numbers in those slots are handed out again.
func (s *Store) Seal(ctx context.Context, slots []int, runID string) error {
	pipe := s.rdb.Pipeline()
	for _, slot := range slots {
		pipe.Set(ctx, s.names.EpochKey(slot), runID, 0)
	}
	_, err := pipe.Exec(ctx)
	return wrap(err)
}

// Clear deletes every key of the namespace in slots, epochs included, so
// that a restore starts from nothing rather than from stale leftovers. Each
// master is scanned, and a key is deleted only if its slot is one of slots.
func (s *Store) Clear(ctx context.Context, slots []int) error {
	lost := make(map[int]bool, len(slots))
	for _, slot := range slots {
		lost[slot] = true
	}
	return wrap(rediscluster.ForEachMaster(ctx, s.rdb, func(ctx context.Context, m rediscluster.Master) error {
		pipe := m.Client.Pipeline()
		iter := m.Client.Scan(ctx, 0, s.names.RedisKeys(), 1000).Iterator()
		for iter.Next(ctx) {
			if key := iter.Val(); lost[keyslot.Slot(key)] {
				pipe.Del(ctx, key) // one key per DEL: keys of several slots cannot share one
			}
			if pipe.Len() >= 1000 {
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		_, err := pipe.Exec(ctx)
		return err
	}))
}
