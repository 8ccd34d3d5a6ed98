package main

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/projections"
)

// linkTo returns the path and query of a Link header's rel.
func linkTo(t *testing.T, link, rel string) string {
	t.Helper()
	m := regexp.MustCompile(`<([^>]*)>; rel="` + rel + `"`).FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("no rel=%q in Link %q", rel, link)
	}
	return m[1]
}

func numbersOf(t *testing.T, r response) string {
	t.Helper()
	var items []struct {
		Number int64  `json:"number"`
		Body   string `json:"body"`
	}
	r.json(t, &items)
	var out []string
	for _, it := range items {
		out = append(out, strconv.FormatInt(it.Number, 10)+":"+it.Body)
	}
	return strings.Join(out, " ")
}

// TestCursorReadsAndLongPoll: cursor reads walk a chat's changes forward
// and back through Link; a long poll answers as soon as a change lies after
// its cursor, or with an empty page when its wait ends; page numbers work
// as before beside them.
func TestCursorReadsAndLongPoll(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "cursors"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	base := "/applications/" + token + "/chats/1/messages"
	for i := 1; i <= 5; i++ {
		s.must(t, 201, "POST", base, map[string]any{"body": "m" + strconv.Itoa(i)})
	}
	s.must(t, 200, "PATCH", base+"/2", map[string]any{"body": "m2 edited"})
	s.eventually(t, base+"/2", func(r response) bool { return strings.Contains(string(r.Body), "edited") })

	first := s.must(t, 200, "GET", base+"?after=0&per_page=2", nil)
	second := s.must(t, 200, "GET", linkTo(t, first.Header.Get("Link"), "next"), nil)
	third := s.must(t, 200, "GET", linkTo(t, second.Header.Get("Link"), "next"), nil)
	back := s.must(t, 200, "GET", linkTo(t, third.Header.Get("Link"), "prev"), nil)
	tests := []struct {
		name string
		r    response
		n    int
	}{
		{"first page after 0", first, 2},
		{"next", second, 2},
		{"next again", third, 1},
		{"prev of that", back, 2},
	}
	for _, tt := range tests {
		if got := strings.Count(numbersOf(t, tt.r), ":"); got != tt.n {
			t.Errorf("%s: %s; want %d items", tt.name, tt.r.Body, tt.n)
		}
		if tt.r.Header.Get("X-Total-Count") != "5" {
			t.Errorf("%s: X-Total-Count %q", tt.name, tt.r.Header.Get("X-Total-Count"))
		}
	}
	// The pages hold each change once, in the log's order (which need not
	// be the commands'), and prev leads back to the page before.
	all := numbersOf(t, first) + " " + numbersOf(t, second) + " " + numbersOf(t, third)
	if got, want := inAnyOrder(all), "1:m1 2:m2 edited 3:m3 4:m4 5:m5"; got != want {
		t.Errorf("forward pages: %s; want %s in any order", all, want)
	}
	if numbersOf(t, back) != numbersOf(t, second) {
		t.Errorf("prev of the third page: %s; want the second, %s", back.Body, second.Body)
	}
	if got := numbersOf(t, s.must(t, 200, "GET", base+"?page=1&per_page=2", nil)); got != "1:m1 2:m2 edited" {
		t.Errorf("page numbers: %s", got)
	}

	// Caught up: a long poll waits its whole wait for nothing, and answers
	// an empty page whose next link polls the same cursor again.
	caughtUp := linkTo(t, third.Header.Get("Link"), "next")
	began := time.Now()
	empty := s.must(t, 200, "GET", caughtUp+"&wait=1s", nil)
	if took := time.Since(began); took < time.Second || numbersOf(t, empty) != "" || linkTo(t, empty.Header.Get("Link"), "next") != caughtUp {
		t.Fatalf("an idle long poll: %s after %s, Link %s", empty.Body, took, empty.Header.Get("Link"))
	}
	// A long poll in flight answers with the message created meanwhile.
	done := make(chan response, 1)
	go func() { done <- s.call(t, "GET", caughtUp+"&wait=20s", nil) }()
	time.Sleep(300 * time.Millisecond)
	created := time.Now()
	s.must(t, 201, "POST", base, map[string]any{"body": "m6"})
	got := <-done
	if numbersOf(t, got) != "6:m6" || time.Since(created) > 5*time.Second {
		t.Fatalf("a long poll: %s after %s", got.Body, time.Since(created))
	}
}

// TestChatsByCursor: an application's chats walk forward and back by
// cursor (a chat's number) through Link, beside its pages.
func TestChatsByCursor(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "chat cursors"}).object(t)["token"].(string)
	base := "/applications/" + token + "/chats"
	for i := 1; i <= 5; i++ {
		s.must(t, 201, "POST", base, map[string]any{"name": "c" + strconv.Itoa(i)})
	}
	s.eventually(t, base+"/5", func(r response) bool { return r.Status == 200 })
	s.eventually(t, base+"?page=1&per_page=5", func(r response) bool { return strings.Count(string(r.Body), `"number"`) == 5 })

	names := func(r response) string {
		t.Helper()
		var items []struct{ Name string }
		r.json(t, &items)
		var out []string
		for _, it := range items {
			out = append(out, it.Name)
		}
		return strings.Join(out, " ")
	}
	first := s.must(t, 200, "GET", base+"?after=0&per_page=2", nil)
	second := s.must(t, 200, "GET", linkTo(t, first.Header.Get("Link"), "next"), nil)
	third := s.must(t, 200, "GET", linkTo(t, second.Header.Get("Link"), "next"), nil)
	past := s.must(t, 200, "GET", linkTo(t, third.Header.Get("Link"), "next"), nil)
	tests := []struct {
		name string
		r    response
		want string
	}{
		{"after 0", first, "c1 c2"},
		{"next", second, "c3 c4"},
		{"next again", third, "c5"},
		{"past the last", past, ""},
		{"prev of the third", s.must(t, 200, "GET", linkTo(t, third.Header.Get("Link"), "prev"), nil), "c3 c4"},
		{"before 3", s.must(t, 200, "GET", base+"?before=3&per_page=5", nil), "c1 c2"},
	}
	for _, tt := range tests {
		if got := names(tt.r); got != tt.want {
			t.Errorf("%s: %q; want %q", tt.name, got, tt.want)
		}
		if tt.r.Header.Get("X-Total-Count") != "5" {
			t.Errorf("%s: X-Total-Count %q", tt.name, tt.r.Header.Get("X-Total-Count"))
		}
	}
	// Past the last chat, next keeps the cursor: a new chat comes there.
	if got, want := linkTo(t, past.Header.Get("Link"), "next"), linkTo(t, third.Header.Get("Link"), "next"); got != want {
		t.Errorf("next past the last: %s; want %s", got, want)
	}
}

// TestReplayUnderOpenStreams: a replay of the read tables while a stream is
// open sends nothing twice and skips nothing: the rebuilt rows hold the
// same cursors.
func TestReplayUnderOpenStreams(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	s := start(t, cfg, true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "replayed"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	base := "/applications/" + token + "/chats/1/messages"
	s.must(t, 201, "POST", base, map[string]any{"body": "before"})
	// The log may hold the message ahead of its chat (the writer stores
	// concurrent deliveries), and a stream needs the chat.
	s.eventually(t, "/applications/"+token+"/chats/1", nil)
	s.eventually(t, base+"/1", nil)
	stream, _ := openStream(t, s, base+"/stream?after=0", "")
	nextEvents(t, stream, 1, 10*time.Second)

	db := testenv.DB(t, cfg)
	rp := projections.NewReplay(projections.ReplayConfig{DB: db, Store: eventstore.New(db, cfg.Namespace), Codec: events.NewCodec(),
		Namespace: cfg.Namespace, Log: slog.New(slog.DiscardHandler), Progress: func(string, int64, int64) {}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	replayed := make(chan error, 1)
	go func() { replayed <- rp.MySQL(ctx) }()
	for i := 2; i <= 6; i++ {
		s.must(t, 201, "POST", base, map[string]any{"body": "m" + strconv.Itoa(i)})
		if i == 4 {
			s.must(t, 200, "PATCH", base+"/1", map[string]any{"body": "before, edited"})
		}
	}
	if err := <-replayed; err != nil {
		t.Fatal(err)
	}
	got := summary(nextEvents(t, stream, 6, 15*time.Second))
	if want := "1:before, edited 2:m2 3:m3 4:m4 5:m5 6:m6"; inAnyOrder(got) != want {
		t.Fatalf("across the replay: %s; want %s in any order", got, want)
	}
	quiet(t, stream, 500*time.Millisecond)
}
