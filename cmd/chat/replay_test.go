package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/projections"
)

// TestReplayWhileServing rebuilds both projections while clients keep
// creating and editing messages: afterwards every projection agrees with the
// event log, counts are exact, and search finds what it should. An
// interrupted replay resumes; a second replay at once is refused.
func TestReplayWhileServing(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	s := start(t, cfg, true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "replayed"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	messages := "/applications/" + token + "/chats/1/messages"
	for i := 0; i < 200; i++ {
		s.must(t, 201, "POST", messages, map[string]any{"body": fmt.Sprint("before ", i)})
	}
	s.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return num(r.object(t)["messages_count"]) == 200 })

	env := map[string]string{"CHAT_MYSQL_DSN": cfg.MySQLDSN, "CHAT_ELASTICSEARCH_URL": cfg.ElasticsearchURL, "CHAT_NAMESPACE": cfg.Namespace, "CHAT_LOG_LEVEL": "warn"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	// An interrupted replay: stop it after its first batches.
	db := testenv.DB(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	rp := projections.NewReplay(projections.ReplayConfig{DB: db, Store: eventstore.New(db, cfg.Namespace), Codec: events.NewCodec(), Namespace: cfg.Namespace, Log: slog.New(slog.DiscardHandler), Progress: func(_ string, done, _ int64) {
		if done >= 50 {
			cancel()
		}
	}})
	rp.BatchSize = 10
	if err := rp.MySQL(ctx); err == nil {
		t.Fatal("the interrupted replay finished")
	}

	// Load goes on during the replay.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	created := 200
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if r := s.call(t, "POST", messages, map[string]any{"body": fmt.Sprint("during ", i)}); r.Status == 201 {
				created++
			}
			// Only the first half is edited, so however long the replay
			// takes, messages still read "before" for the check below.
			s.call(t, "PATCH", fmt.Sprintf("%s/%d", messages, 1+i%100), map[string]any{"body": fmt.Sprint("edited during ", i)})
			// A steady trickle, not a flood: the test engine indexes in the
			// background at a few hundred documents a second.
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// A second replay at once is refused.
	held, err := mysqldb.AcquireLock(context.Background(), db, catalog.New(cfg.Namespace).ReplayLock("search"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"replay", "search"}, lookup, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "another replay") {
		t.Errorf("a replay while another runs: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	held.Release()

	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"replay", "all"}, lookup, &out, &errOut); code != 0 {
		t.Fatalf("replay: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "replayed all") {
		t.Errorf("replay output: %s", out.String())
	}
	close(stop)
	wg.Wait()

	s.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return num(r.object(t)["messages_count"]) == int64(created) })
	// The last edits may still be on their way to either projection: wait
	// until search and the read tables agree on which bodies are unedited.
	var want, got []int64
	var last response
	deadline := time.Now().Add(testenv.SearchWait)
	for {
		want = allBefore(t, s, messages)
		got, last = searchNumbers(t, s, messages+"/search?q=before&per_page=1000")
		if len(want) > 0 && sorted(got) == sorted(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("search finds %v for \"before\" (%d %s), the read tables have %v", got, last.Status, last.Body, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	testenvEventuallyVerified(t, lookup)
}

// allBefore lists the messages whose body still starts with "before".
func allBefore(t *testing.T, s *system, messages string) []int64 {
	r := s.must(t, 200, "GET", messages+"?per_page=1000", nil)
	var list []struct {
		Number int64
		Body   string
	}
	r.json(t, &list)
	var out []int64
	for _, m := range list {
		if strings.HasPrefix(m.Body, "before") {
			out = append(out, m.Number)
		}
	}
	return out
}

// testenvEventuallyVerified runs chat verify until the projections have
// caught up with the log and agree with it.
func testenvEventuallyVerified(t *testing.T, lookup func(string) (string, bool)) {
	t.Helper()
	var out, errOut strings.Builder
	for i := 0; i < 50; i++ {
		out.Reset()
		errOut.Reset()
		if run(context.Background(), []string{"verify"}, lookup, &out, &errOut) == 0 {
			return
		}
	}
	t.Fatalf("verify after replay:\n%s%s", out.String(), errOut.String())
}
