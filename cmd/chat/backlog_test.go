package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
)

// TestBacklogIsBounded: with no writer draining the queue, creates fill
// their partition's queue up to its bound and are then refused with 503
// backlog_full and a Retry-After, /readyz shows it (staying ready), and once a
// writer runs the creates are taken again; every create answered 201 reads
// back, and no more were accepted than the bound holds.
func TestBacklogIsBounded(t *testing.T) {
	t.Parallel()
	const bound = 16 << 10
	cfg := testenv.ConfigOn(t, "", func(c *config.Config) {
		c.StoreQueueBytes = bound
		c.Partitions = 1
	})
	api := start(t, cfg, true, false)
	token := api.must(t, 201, "POST", "/applications", map[string]string{"name": "busy"}).object(t)["token"].(string)
	api.must(t, 201, "POST", "/applications/"+token+"/chats", map[string]string{"name": "c"})
	path := "/applications/" + token + "/chats/1/messages"

	body := strings.Repeat("x", 200)
	var created []int64
	var refused response
	for i := 0; i < 2000 && refused.Status == 0; i++ {
		r := api.call(t, "POST", path, map[string]string{"body": body})
		switch r.Status {
		case http.StatusCreated:
			created = append(created, int64(num(r.object(t)["number"])))
		case http.StatusServiceUnavailable:
			refused = r
		default:
			t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
		}
	}
	if refused.Status == 0 {
		t.Fatalf("%d creates taken with no writer and a bound of %d bytes; none refused", len(created), bound)
	}
	if code := refused.errorCode(t); code != "backlog_full" || refused.Header.Get("Retry-After") == "" {
		t.Errorf("refused with %q, Retry-After %q; want backlog_full and a wait", code, refused.Header.Get("Retry-After"))
	}
	// Each event takes a few hundred bytes of the queue: the bound, not
	// the loop, stopped them.
	if len(created)*len(body) > bound {
		t.Errorf("%d creates of %d bytes taken by a queue bounded at %d bytes", len(created), len(body), bound)
	}
	ready := api.call(t, "GET", "/readyz", nil)
	if ready.Status != http.StatusOK || !strings.Contains(string(ready.Body), `"backlog":"unavailable"`) {
		t.Errorf("/readyz %d %s; want ready, with the backlog check failing", ready.Status, ready.Body)
	}

	start(t, cfg, false, true)
	testenv.Eventually(t, 30*time.Second, "creates taken again once a writer drains the queue", func() bool {
		r := api.call(t, "POST", path, map[string]string{"body": "after"})
		if r.Status == http.StatusCreated {
			created = append(created, int64(num(r.object(t)["number"])))
		}
		return r.Status == http.StatusCreated
	})
	for _, n := range created {
		api.eventually(t, fmt.Sprintf("%s/%d", path, n), nil)
	}
}
