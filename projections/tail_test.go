package projections

import (
	"testing"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
)

func storedAt(from, to int64) []eventstore.Stored {
	var out []eventstore.Stored
	for p := from; p <= to; p++ {
		out = append(out, eventstore.Stored{Partition: 3, Position: p, Record: events.Record{Data: []byte("0123456789")}})
	}
	return out
}

// TestTailHandsOverOnlyWhatFollowsTheCheckpoint: a runner takes from its
// tail only a batch that starts right after its position; anything else
// sends it to the log.
func TestTailHandsOverOnlyWhatFollowsTheCheckpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		added     [][]eventstore.Stored
		after     int64
		limit     int
		wantFirst int64 // 0: nothing handed over
		wantLen   int
	}{
		{"follows on", [][]eventstore.Stored{storedAt(11, 15)}, 10, 100, 11, 5},
		{"appends in order join", [][]eventstore.Stored{storedAt(11, 12), storedAt(13, 15)}, 10, 100, 11, 5},
		{"what the runner applied already is skipped", [][]eventstore.Stored{storedAt(11, 15)}, 12, 100, 13, 3},
		{"the runner is behind", [][]eventstore.Stored{storedAt(11, 15)}, 5, 100, 0, 0},
		{"a gap starts the tail anew", [][]eventstore.Stored{storedAt(11, 12), storedAt(20, 21)}, 12, 100, 0, 0},
		{"after a gap, what follows the new start", [][]eventstore.Stored{storedAt(11, 12), storedAt(20, 21)}, 19, 100, 20, 2},
		{"a batch is at most limit", [][]eventstore.Stored{storedAt(11, 15)}, 10, 2, 11, 2},
		{"past its bound the tail is emptied", [][]eventstore.Stored{storedAt(11, 20), storedAt(21, 30)}, 10, 100, 0, 0},
		{"nothing handed over", nil, 10, 100, 0, 0},
	}
	for _, tc := range tests {
		tl := &tail{maxLen: 15, maxBytes: 1 << 20}
		for _, s := range tc.added {
			tl.add(s)
		}
		got := tl.take(tc.after, tc.limit, 1<<20)
		first := int64(0)
		if len(got) > 0 {
			first = got[0].Position
		}
		if first != tc.wantFirst || len(got) != tc.wantLen {
			t.Errorf("%s: took %d events from %d, want %d from %d", tc.name, len(got), first, tc.wantLen, tc.wantFirst)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Position != got[i-1].Position+1 {
				t.Errorf("%s: positions %d then %d", tc.name, got[i-1].Position, got[i].Position)
			}
		}
	}
}

// TestTailBoundsBytes: a batch from the tail stops at the byte cap, with at
// least one event.
func TestTailBoundsBytes(t *testing.T) {
	t.Parallel()
	tl := &tail{maxLen: 100, maxBytes: 1 << 20}
	tl.add(storedAt(1, 10))
	if got := tl.take(0, 100, 25); len(got) != 2 {
		t.Errorf("took %d events of 10 bytes under a cap of 25, want 2", len(got))
	}
	if got := tl.take(2, 100, 5); len(got) != 1 {
		t.Errorf("took %d events of 10 bytes under a cap of 5, want 1", len(got))
	}
	if !tl.waiting() {
		t.Error("the tail says nothing waits; 7 events do")
	}
}
