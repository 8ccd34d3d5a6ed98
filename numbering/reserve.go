package numbering

import (
	"context"
	"hash/maphash"

	"github.com/chatsys/chat/internal/groupcommit"
)

// reserver hands out numbers several callers at a time: the reservations of
// one counter (an application's chat numbers, a chat's message numbers) that
// arrive while an earlier one is in Redis are made together, by one script
// that takes as many numbers, and shared out in the order the callers came.
// A busy chat then costs Redis one round trip for many creates instead of
// one each. Counters are spread over shards, each one reservation at a time;
// callers of different counters that share a shard take their turns.
type reserver struct {
	seed   maphash.Seed
	shards []*groupcommit.Group[string, reserved]
}

// reserved is one caller's number, or why it got none.
type reserved struct {
	n   int64
	err error
}

const reserveShards = 64

func newReserver(s *Store) *reserver {
	r := &reserver{seed: maphash.MakeSeed(), shards: make([]*groupcommit.Group[string, reserved], reserveShards)}
	for i := range r.shards {
		r.shards[i] = groupcommit.New(s.reserveAll, nil, 1<<20)
	}
	return r
}

// next reserves the next number of the counter in key's "n" field.
func (r *reserver) next(ctx context.Context, key string) (int64, error) {
	g := r.shards[maphash.String(r.seed, key)%reserveShards]
	// The reservation may be made for other callers too: one caller's
	// hanging up must not fail theirs.
	res, err := g.Do(context.WithoutCancel(ctx), key)
	if err != nil {
		return 0, err
	}
	return res.n, res.err
}

// reserveAll takes, for each counter among keys, as many numbers as it is
// asked for, in one script per counter, and deals them out in order. A
// counter's failure (unknown, recovering, Redis down) is its callers' alone.
func (s *Store) reserveAll(ctx context.Context, keys []string) ([]reserved, error) {
	out := make([]reserved, len(keys))
	counts := make(map[string]int64, 1)
	order := make([]string, 0, 1)
	for _, k := range keys {
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	last := make(map[string]reserved, len(order))
	for _, k := range order {
		n, err := s.run(ctx, nextIfExists, []string{k}, "n", counts[k])
		last[k] = reserved{n, err}
	}
	dealt := make(map[string]int64, len(order))
	for i, k := range keys {
		l := last[k]
		if l.err != nil {
			out[i] = l
			continue
		}
		out[i] = reserved{n: l.n - counts[k] + 1 + dealt[k]}
		dealt[k]++
	}
	return out, nil
}
