package ingest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/events"
)

// TestFillBoundsTheBatch: a batch takes the messages that are waiting until
// it is full in messages or in payload bytes, and waits only briefly for
// more when none are, or none will come.
func TestFillBoundsTheBatch(t *testing.T) {
	t.Parallel()
	record := func(bytes int) *delivery {
		return &delivery{recs: []events.Record{{Data: []byte(strings.Repeat("x", bytes))}}}
	}
	tests := []struct {
		name     string
		capacity int // the batch's capacity: the most records
		maxBytes int
		first    int   // payload size of the record the batch starts with
		waiting  []int // payload sizes of the records waiting after it
		done     bool  // the reader has closed its channel after them
		want     int   // records in the batch
	}{
		{"takes what is waiting", 10, 1 << 20, 30, []int{10, 10, 10}, false, 4},
		{"stops at the records cap", 3, 1 << 20, 30, []int{10, 10, 10, 10}, false, 3},
		{"stops once the bytes reach the cap", 10, 100, 30, []int{30, 30, 30, 30}, false, 4},
		{"a first record over the cap goes alone", 10, 100, 200, []int{500}, false, 1},
		{"nothing waiting", 10, 1 << 20, 30, nil, false, 1},
		{"the reader is done", 10, 1 << 20, 30, []int{10, 10}, true, 3},
	}
	for _, tc := range tests {
		w := &partitionWriter{w: &Writer{cfg: WriterConfig{MaxBatchBytes: tc.maxBytes}}, in: make(chan *delivery, len(tc.waiting))}
		for _, n := range tc.waiting {
			w.in <- record(n)
		}
		if tc.done {
			close(w.in)
		}
		start := time.Now()
		batch := w.fill(append(make([]*delivery, 0, tc.capacity), record(tc.first)))
		if len(batch) != tc.want || slices.Contains(batch, nil) {
			t.Errorf("%s: %d records in the batch (%v), want %d", tc.name, len(batch), batch, tc.want)
		}
		if took := time.Since(start); took > maxLinger+100*time.Millisecond {
			t.Errorf("%s: fill took %s; it lingers at most %s", tc.name, took, maxLinger)
		}
	}
}
