package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
)

// sseEvent is one Server-Sent Event as a client reads it.
type sseEvent struct {
	name, id string
	number   int64
	body     string
}

// openStream opens a stream of path on s with the given Last-Event-ID (none
// when empty) and returns its events as they come; the stream closes when
// the returned func is called or the test ends.
func openStream(t *testing.T, s *system, path, lastEventID string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	out := make(chan sseEvent, 1000)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: ") && isChange(ev.name):
				var m struct {
					Number int64  `json:"number"`
					Body   string `json:"body"`
				}
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m)
				ev.number, ev.body = m.Number, m.Body
			}
		}
	}()
	t.Cleanup(cancel)
	return out, cancel
}

// isChange reports whether an event is a message's change: a create or
// edit ("message") or a delete.
func isChange(name string) bool { return name == "message" || name == "delete" }

// nextEvents reads n change events from a stream, failing after wait.
func nextEvents(t *testing.T, events <-chan sseEvent, n int, wait time.Duration) []sseEvent {
	t.Helper()
	var got []sseEvent
	deadline := time.After(wait)
	for len(got) < n {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended after %v", got)
			}
			if isChange(ev.name) {
				got = append(got, ev)
			}
		case <-deadline:
			t.Fatalf("%d of %d events within %s: %v", len(got), n, wait, got)
		}
	}
	return got
}

// quiet checks that a stream sends no message event for a while.
func quiet(t *testing.T, events <-chan sseEvent, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-events:
			if isChange(ev.name) {
				t.Fatalf("an extra event: %+v", ev)
			}
		case <-deadline:
			return
		}
	}
}

// inAnyOrder is summary's items in sorted order: commands answered one after
// the other may be stored in another order (the log's order is the one its
// partition's writer appended them in), unless the first was readable
// before the second was sent.
func inAnyOrder(summary string) string {
	items := strings.Split(summary, " ")
	var out []string
	for _, it := range items {
		if strings.Contains(it, ":") || len(out) == 0 {
			out = append(out, it)
		} else {
			out[len(out)-1] += " " + it
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func summary(evs []sseEvent) string {
	var parts []string
	for _, e := range evs {
		if e.name == "delete" {
			parts = append(parts, strconv.FormatInt(e.number, 10)+":(deleted)")
			continue
		}
		parts = append(parts, strconv.FormatInt(e.number, 10)+":"+e.body)
	}
	return strings.Join(parts, " ")
}

// TestStreamResumesExactly: a stream sends what lies after its cursor,
// then live creates and edits; a client that reconnects with Last-Event-ID
// gets exactly what it missed, edits included, in the order they were
// made, and nothing twice.
func TestStreamResumesExactly(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "live"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	base := "/applications/" + token + "/chats/1/messages"
	post := func(body string) { s.must(t, 201, "POST", base, map[string]any{"body": body}) }
	edit := func(n int, body string) {
		s.must(t, 200, "PATCH", base+"/"+strconv.Itoa(n), map[string]any{"body": body})
	}

	post("one")
	post("two")
	s.eventually(t, base+"/2", nil)
	events, stop := openStream(t, s, base+"/stream?after=0", "")
	first := nextEvents(t, events, 2, 10*time.Second)
	if got, want := inAnyOrder(summary(first)), "1:one 2:two"; got != want {
		t.Fatalf("first connection: %s; want %s", got, want)
	}
	post("three")
	first = append(first, nextEvents(t, events, 1, 10*time.Second)...)
	edit(2, "two, edited")
	first = append(first, nextEvents(t, events, 1, 10*time.Second)...)
	if got, want := summary(first[2:]), "3:three 2:two, edited"; got != want {
		t.Fatalf("first connection, live: %s; want %s", got, want)
	}
	stop()

	// Missed while away: a create, an edit of a message seen, and an edit
	// of a message created while away.
	post("four")
	edit(1, "one, edited")
	post("five")
	edit(5, "five, edited")
	s.eventually(t, base+"/5", func(r response) bool { return strings.Contains(string(r.Body), "five, edited") })

	tests := []struct {
		name, query, lastEventID string
		want                     string
	}{
		{"Last-Event-ID", "", first[len(first)-1].id, "4:four 1:one, edited 5:five, edited"},
		{"Last-Event-ID wins over after", "?after=0", first[len(first)-1].id, "4:four 1:one, edited 5:five, edited"},
		{"after", "?after=" + first[2].id, "", "2:two, edited 4:four 1:one, edited 5:five, edited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, _ := openStream(t, s, base+"/stream"+tt.query, tt.lastEventID)
			n := strings.Count(tt.want, ":")
			got := nextEvents(t, events, n, 10*time.Second)
			if inAnyOrder(summary(got)) != inAnyOrder(tt.want) {
				t.Fatalf("resumed: %s; want %s", summary(got), tt.want)
			}
			quiet(t, events, 300*time.Millisecond)
		})
	}

	// Without a cursor a stream starts after the latest change.
	events, _ = openStream(t, s, base+"/stream", "")
	post("six")
	if got := summary(nextEvents(t, events, 1, 10*time.Second)); got != "6:six" {
		t.Fatalf("a stream without a cursor got %s", got)
	}
}
