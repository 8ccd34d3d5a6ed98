package api

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestFeedSendsWhatACursorLacks: a stream is sent each message changed
// after its cursor once, at its latest position, as a read of the read
// tables after that cursor would answer; a cursor before the window is
// told to read the tables itself.
func TestFeedSendsWhatACursorLacks(t *testing.T) {
	t.Parallel()
	f := &feed{base: 2, head: 8, changed: make(chan struct{})}
	for _, it := range []struct{ position, number int64 }{{3, 1}, {4, 2}, {6, 1}, {8, 3}} {
		event := "id: " + formatCursor(it.position) + "\ndata: m" + formatCursor(it.number) + "\n\n"
		f.items = append(f.items, feedItem{position: it.position, number: it.number, occurred: time.Now(), event: []byte(event)})
	}
	tests := []struct {
		cursor   int64
		ok       bool
		sent     string // position:message of each event
		nextWant int64
	}{
		{cursor: 1, ok: false, nextWant: 1},
		{cursor: 2, ok: true, sent: "4:m2 6:m1 8:m3", nextWant: 8},
		{cursor: 3, ok: true, sent: "4:m2 6:m1 8:m3", nextWant: 8},
		{cursor: 4, ok: true, sent: "6:m1 8:m3", nextWant: 8},
		{cursor: 7, ok: true, sent: "8:m3", nextWant: 8},
		{cursor: 8, ok: true, sent: "", nextWant: 8},
		{cursor: 12, ok: true, sent: "", nextWant: 12},
	}
	event := regexp.MustCompile(`id: (\d+)\ndata: (m\d+)\n\n`)
	for _, tt := range tests {
		var buf bytes.Buffer
		calls := 0
		next, changed, ok := f.after(tt.cursor, &buf, func(time.Time) { calls++ })
		var sent []string
		for _, m := range event.FindAllStringSubmatch(buf.String(), -1) {
			sent = append(sent, m[1]+":"+m[2])
		}
		got := strings.Join(sent, " ")
		if ok != tt.ok || got != tt.sent || next != tt.nextWant || calls != len(sent) || changed == nil {
			t.Errorf("after %d: ok %v, sent %q (%d counted), next %d; want ok %v, sent %q, next %d",
				tt.cursor, ok, got, calls, next, tt.ok, tt.sent, tt.nextWant)
		}
	}
}
