package verify

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/chatsys/chat/eventstore"
)

// check is one verification's way through the partitions.
type check struct {
	v    *Verifier
	conn *sql.Conn // inside the consistent snapshot
	rep  *Report
	// done and total count the events read, over every partition and
	// slice, for progress.
	done, total int64
}

func (c *check) diff(format string, args ...any) {
	c.rep.Differences = append(c.rep.Differences, fmt.Sprintf(format, args...))
}

// partition folds and compares a partition, a slice at a time, and then
// the search index's documents of its chats.
func (c *check) partition(ctx context.Context, p part, tokens []string) error {
	var want map[chatKey]int64 // per chat, the documents search should hold
	if c.v.cfg.Search != nil {
		want = map[chatKey]int64{}
	}
	for i := range p.slices {
		s := slice{uint64(i), uint64(p.slices)}
		forMySQL, forSearch := newFold(), (*fold)(nil)
		switch {
		case want == nil:
		case p.searchAt == p.mysqlAt:
			forSearch = forMySQL
		default:
			forSearch = newFold()
		}
		if err := c.fold(ctx, p, s, forMySQL, forSearch); err != nil {
			return err
		}
		if forSearch != nil {
			addSearchWant(want, forSearch)
		}
		if err := c.uncount(ctx, forMySQL, p, p.mysqlAt); err != nil {
			return err
		}
		if err := c.compareTables(ctx, forMySQL, s, tokens); err != nil {
			return err
		}
	}
	if want != nil {
		return c.compareSearch(ctx, want)
	}
	return nil
}

// fold reads a partition's log, within the snapshot, up to where its
// projections are, and folds what concerns slice s: the events up to the
// read tables' position into forMySQL, and those up to the search
// checkpoint into forSearch (nil when search is not checked; forMySQL when
// both positions agree). The first slice also checks that the positions
// run without a gap.
func (c *check) fold(ctx context.Context, p part, s slice, forMySQL, forSearch *fold) error {
	upTo, pos := p.upTo(), int64(0)
	for pos < upTo {
		batch, err := c.v.cfg.Store.ReadWith(ctx, c.conn, p.id, pos, batchEvents, batchBytes)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		for _, st := range batch {
			if st.Position > upTo {
				break
			}
			if st.Position != pos+1 && s.first() {
				c.diff("partition %d: position %d follows %d", p.id, st.Position, pos)
			}
			pos = st.Position
			if err := c.event(p, s, st, forMySQL, forSearch); err != nil {
				return err
			}
		}
		c.v.cfg.Progress("verify", c.done+min(pos, upTo), c.total)
		if batch[len(batch)-1].Position > upTo {
			break
		}
	}
	c.done += upTo
	if pos < upTo && s.first() {
		c.diff("partition %d: positions stop at %d, short of %d where its projections are", p.id, pos, upTo)
	}
	return nil
}

// event folds one event of the log, if it concerns slice s. An event that
// does not decode is a difference, reported by the slice that owns it.
func (c *check) event(p part, s slice, st eventstore.Stored, forMySQL, forSearch *fold) error {
	concerns, owns := s.concerns(st.StreamID)
	if !concerns {
		return nil
	}
	env, err := c.v.cfg.Codec.Decode(st.Record)
	if err != nil {
		if owns {
			c.diff("event at partition %d position %d cannot be decoded by this build: %v", p.id, st.Position, err)
		}
		return nil
	}
	if st.Position <= p.mysqlAt {
		if err := forMySQL.applyIn(env, s); err != nil {
			return fmt.Errorf("event at partition %d position %d: %w", p.id, st.Position, err)
		}
		if owns {
			c.rep.Events++
		}
	}
	if forSearch != nil && forSearch != forMySQL && st.Position <= p.searchAt {
		if err := forSearch.applyIn(env, s); err != nil {
			return fmt.Errorf("event at partition %d position %d: %w", p.id, st.Position, err)
		}
	}
	return nil
}
