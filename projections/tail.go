package projections

import (
	"sync"

	"github.com/chatsys/chat/eventstore"
)

// tail holds what a partition's writer handed its runner after each append,
// in position order, so that the runner applies the events it would
// otherwise read back from the log at once. It is only ever a shortcut: the
// runner takes from it a batch that follows on from its checkpoint, and
// reads the log whenever it does not (the runner was behind, a replay moved
// its checkpoint, the tail overflowed).
type tail struct {
	mu       sync.Mutex
	events   []eventstore.Stored
	bytes    int
	maxBytes int
	maxLen   int
}

// add appends stored after what the tail holds. Events that do not follow on
// from it start it anew; past its bounds it is emptied, and the runner reads
// the log.
func (t *tail) add(stored []eventstore.Stored) {
	if len(stored) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.events); n > 0 && (t.events[n-1].Partition != stored[0].Partition || t.events[n-1].Position+1 != stored[0].Position) {
		t.reset()
	}
	size := 0
	for _, s := range stored {
		size += len(s.Data)
	}
	if len(t.events)+len(stored) > t.maxLen || t.bytes+size > t.maxBytes {
		t.reset()
		return
	}
	t.events = append(t.events, stored...)
	t.bytes += size
}

// take removes and returns the events after position after, up to limit
// events or maxBytes of payload (at least one), if the first of them is the
// one right after it; nil otherwise.
func (t *tail) take(after int64, limit, maxBytes int) []eventstore.Stored {
	t.mu.Lock()
	defer t.mu.Unlock()
	skip := 0
	for skip < len(t.events) && t.events[skip].Position <= after {
		t.bytes -= len(t.events[skip].Data)
		skip++
	}
	t.events = t.events[skip:]
	if len(t.events) == 0 || t.events[0].Position != after+1 {
		return nil
	}
	n, size := 0, 0
	for n < len(t.events) && n < limit && (n == 0 || size+len(t.events[n].Data) <= maxBytes) {
		size += len(t.events[n].Data)
		n++
	}
	out := t.events[:n:n]
	t.events = t.events[n:]
	t.bytes -= size
	if len(t.events) == 0 {
		t.reset()
	}
	return out
}

// waiting reports whether the tail holds events.
func (t *tail) waiting() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.events) > 0
}

func (t *tail) reset() {
	t.events, t.bytes = nil, 0
}
