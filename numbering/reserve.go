package numbering

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/internal/groupcommit"
)

// reserver hands out numbers many callers at a time: the reservations that
// arrive while an earlier round is in Redis are made together in the next
// round, one pipeline of one script per counter (an application's chat
// numbers, a chat's message numbers) that takes as many numbers as its
// callers asked for, shared out in the order they came. A busy chat then
// costs Redis one script for many creates, and many quiet chats one round
// trip between them, instead of one each.
//
// On a Redis Cluster each master has its rounds of its own, so that a master
// that is slow or lost delays only the counters it holds.
type reserver struct {
	s       *Store
	cluster *redis.ClusterClient // nil on one server

	mu     sync.Mutex
	rounds map[string]*groupcommit.Group[string, reserved] // by master address
}

// reserved is one caller's number, or why it got none.
type reserved struct {
	n   int64
	err error
}

// maxRound bounds the reservations of one round, so that the pipeline and
// the scripts it carries stay a small share of a Redis's time.
const maxRound = 512

func newReserver(s *Store) *reserver {
	cluster, _ := s.rdb.(*redis.ClusterClient)
	return &reserver{s: s, cluster: cluster, rounds: make(map[string]*groupcommit.Group[string, reserved])}
}

// next reserves the next number of the counter in key's "n" field.
func (r *reserver) next(ctx context.Context, key string) (int64, error) {
	// The reservation may be made for other callers too: one caller's
	// hanging up must not fail theirs.
	ctx = context.WithoutCancel(ctx)
	g, err := r.round(ctx, key)
	if err != nil {
		return 0, err
	}
	res, err := g.Do(ctx, key)
	if err != nil {
		return 0, err
	}
	return res.n, res.err
}

// round is the group that key's reservations join: the one of its master.
func (r *reserver) round(ctx context.Context, key string) (*groupcommit.Group[string, reserved], error) {
	addr := ""
	if r.cluster != nil {
		master, err := r.cluster.MasterForKey(ctx, key)
		if err != nil {
			return nil, wrap(err)
		}
		addr = master.Options().Addr
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.rounds[addr]
	if g == nil {
		g = groupcommit.New(r.s.reserveAll, nil, maxRound)
		r.rounds[addr] = g
	}
	return g, nil
}

// reserveAll takes, for each counter among keys, as many numbers as it is
// asked for, in one pipelined round trip, and deals them out in order. A
// counter's failure (unknown, recovering, Redis down) is its callers' alone.
func (s *Store) reserveAll(ctx context.Context, keys []string) ([]reserved, error) {
	counts := make(map[string]int64, len(keys))
	order := make([]string, 0, len(keys))
	for _, k := range keys {
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	calls := make([]scriptCall, len(order))
	for i, k := range order {
		calls[i] = scriptCall{keys: []string{k}, args: []any{"n", counts[k]}}
	}
	s.runAll(ctx, nextIfExists, calls)
	last := make(map[string]reserved, len(order))
	for i, k := range order {
		last[k] = reserved{calls[i].n, calls[i].err}
	}
	out := make([]reserved, len(keys))
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

// scriptCall is one run of a script in a pipeline: its keys (the epoch key
// of their slot is added), its arguments, and its result as run's.
type scriptCall struct {
	keys []string
	args []any
	n    int64
	err  error
}

// runAll runs script once per call in one pipeline, each with the epoch key
// of its keys' slot appended, and sets each call's result as run would.
// Scripts go by their digest; the calls that a Redis does not know it for
// (restarted, or a replica just promoted) are sent again with the body.
func (s *Store) runAll(ctx context.Context, script *redis.Script, calls []scriptCall) {
	send := func(idx []int, byBody bool) []*redis.Cmd {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(idx))
		for j, i := range idx {
			keys := append(calls[i].keys[:len(calls[i].keys):len(calls[i].keys)], s.names.EpochKeyOf(calls[i].keys[0]))
			if byBody {
				cmds[j] = script.Eval(ctx, pipe, keys, calls[i].args...)
			} else {
				cmds[j] = script.EvalSha(ctx, pipe, keys, calls[i].args...)
			}
		}
		_, _ = pipe.Exec(ctx) // each command holds its own error
		return cmds
	}
	all := make([]int, len(calls))
	for i := range all {
		all[i] = i
	}
	var unknown []int
	for j, cmd := range send(all, false) {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			unknown = append(unknown, all[j])
			continue
		}
		calls[j].n, calls[j].err = outcome(cmd.Int64())
	}
	if len(unknown) > 0 {
		for j, cmd := range send(unknown, true) {
			i := unknown[j]
			calls[i].n, calls[i].err = outcome(cmd.Int64())
		}
	}
}
