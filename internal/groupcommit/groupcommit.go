// Package groupcommit commits in one go what several goroutines hand in at
// about the same time: the first caller commits what is waiting, and those
// who arrive while it commits are committed together next. A process that
// holds many partitions of the event log thus pays one transaction for the
// batches of all of them, not one each, and the cost of an event does not
// grow with the number of partitions.
//
// No goroutine of its own runs: each commit is made by one of the callers
// (the leader), which hands the lead to a waiting caller when it is done.
// One commit runs at a time: the callers that arrive while it runs make the
// next one larger. (Two at once were measured: smaller groups, more cost
// per item for the database, and no more throughput.)
package groupcommit

import (
	"context"
	"errors"
	"sync"
)

// Commit commits items as a whole: it returns a result per item, or an
// error, and then nothing of the items took effect (or, on a store that
// cannot commit several shards atomically, what took effect is safe to
// commit again).
type Commit[T, R any] func(ctx context.Context, items []T) ([]R, error)

// Group gathers items into commits.
type Group[T, R any] struct {
	commit    Commit[T, R]
	weigh     func(T) int
	maxWeight int

	mu      sync.Mutex
	queue   []*call[T, R]
	leading bool
}

type call[T, R any] struct {
	item T
	res  R
	err  error
	// wake hands the call the group it is to commit as leader (itself
	// first), or nil once its result is in.
	wake chan []*call[T, R]
}

// New returns a group that commits with commit. A commit holds items of
// total weight up to maxWeight (weigh of nil weighs each item 1), and at
// least one item whatever its weight.
func New[T, R any](commit Commit[T, R], weigh func(T) int, maxWeight int) *Group[T, R] {
	if weigh == nil {
		weigh = func(T) int { return 1 }
	}
	return &Group[T, R]{commit: commit, weigh: weigh, maxWeight: maxWeight}
}

// Do commits item, together with the items other callers hand in
// meanwhile, and returns its result. When this caller leads, the commit
// runs under ctx; otherwise it waits for a commit that runs under another
// caller's, so callers must bound their contexts alike.
func (g *Group[T, R]) Do(ctx context.Context, item T) (R, error) {
	c := &call[T, R]{item: item, wake: make(chan []*call[T, R], 1)}
	var group []*call[T, R]
	g.mu.Lock()
	if !g.leading {
		// Calls wait only while a commit runs: there is nothing queued to
		// take along.
		g.leading = true
		g.mu.Unlock()
		group = []*call[T, R]{c}
	} else {
		g.queue = append(g.queue, c)
		g.mu.Unlock()
		if group = <-c.wake; group == nil {
			return c.res, c.err
		}
	}

	g.run(ctx, group)

	// Hand the lead, with the next group, to the first caller waiting.
	g.mu.Lock()
	if len(g.queue) > 0 {
		next := g.take()
		next[0].wake <- next
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for _, other := range group[1:] {
		other.wake <- nil
	}
	return c.res, c.err
}

// take removes the next group from the front of the queue: items of total
// weight up to maxWeight, and at least one.
func (g *Group[T, R]) take() []*call[T, R] {
	n, weight := 0, 0
	for n < len(g.queue) && (n == 0 || weight+g.weigh(g.queue[n].item) <= g.maxWeight) {
		weight += g.weigh(g.queue[n].item)
		n++
	}
	group := g.queue[:n:n]
	g.queue = g.queue[n:]
	if len(g.queue) == 0 {
		g.queue = nil
	}
	return group
}

// run commits a group and sets each call's result. A group whose error may
// concern some of its items only (see Split) is committed again item by
// item, so that one item's failure fails that item alone.
func (g *Group[T, R]) run(ctx context.Context, group []*call[T, R]) {
	items := make([]T, len(group))
	for i, c := range group {
		items[i] = c.item
	}
	res, err := g.commit(ctx, items)
	if err != nil && len(group) > 1 && errors.Is(err, errSplit) {
		for _, c := range group {
			g.run(ctx, []*call[T, R]{c})
		}
		return
	}
	for i, c := range group {
		if err != nil {
			c.err = err
			continue
		}
		c.res = res[i]
	}
}

var errSplit = errors.New("concerns some items only")

// Split marks a commit's error as one that may concern some of its items
// only (a partition taken over, a batch that no longer follows its
// checkpoint, an event a fold cannot apply): the group then commits each
// item alone. Errors that concern them all alike (the database is
// unreachable) should not be marked, lest an outage cost a try per item.
func Split(err error) error {
	if err == nil {
		return nil
	}
	return &splitError{err}
}

type splitError struct{ err error }

func (e *splitError) Error() string { return e.err.Error() }
func (e *splitError) Unwrap() []error {
	return []error{e.err, errSplit}
}
