package main

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
)

// TestStreamsAcrossProcesses: a message created through one serve process
// reaches a stream held by another, woken through Redis (the stream's own
// re-read is set far off, so only the wake-up can deliver it in time), on a
// single Redis and on a Redis Cluster.
func TestStreamsAcrossProcesses(t *testing.T) {
	t.Parallel()
	for _, backend := range testenv.RedisBackends() {
		t.Run(backend.Name, func(t *testing.T) {
			t.Parallel()
			cfg := testenv.ConfigOn(t, backend.URL(t))
			start(t, cfg, false, true) // the worker: writer and projectors
			posting := start(t, cfg, true, false)
			far := cfg
			far.StreamRecheck = time.Minute
			following := start(t, far, true, false)

			token := posting.must(t, 201, "POST", "/applications", map[string]any{"name": "two serves"}).object(t)["token"].(string)
			posting.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
			base := "/applications/" + token + "/chats/1/messages"
			following.eventually(t, "/applications/"+token+"/chats/1", nil)
			stream, _ := openStream(t, following, base+"/stream", "")
			for i := 1; i <= 3; i++ {
				posting.must(t, 201, "POST", base, map[string]any{"body": "m" + strconv.Itoa(i)})
				got := nextEvents(t, stream, 1, 5*time.Second)
				if got[0].number != int64(i) {
					t.Fatalf("event %d is message %d", i, got[0].number)
				}
			}
		})
	}
}

// TestLostWakeUpIsABoundedDelay: a serve process cut off from the wake-ups
// (its Redis connections dropped) still delivers every message to its
// streams, within its re-read interval.
func TestLostWakeUpIsABoundedDelay(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	start(t, cfg, false, true)
	posting := start(t, cfg, true, false)

	u, err := url.Parse(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	cut := cfg
	cut.RedisURL = u.String()
	cut.StreamRecheck = time.Second
	following := start(t, cut, true, false)

	token := posting.must(t, 201, "POST", "/applications", map[string]any{"name": "cut off"}).object(t)["token"].(string)
	posting.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	base := "/applications/" + token + "/chats/1/messages"
	following.eventually(t, "/applications/"+token+"/chats/1", nil)
	stream, _ := openStream(t, following, base+"/stream", "")
	proxy.Down()
	for i := 1; i <= 3; i++ {
		sent := time.Now()
		posting.must(t, 201, "POST", base, map[string]any{"body": "m" + strconv.Itoa(i)})
		got := nextEvents(t, stream, 1, 5*time.Second)
		// The bound: the projection's delay plus one re-read interval.
		if took := time.Since(sent); got[0].number != int64(i) || took > 2500*time.Millisecond {
			t.Fatalf("message %d came as event %d after %s", i, got[0].number, took)
		}
	}
}
