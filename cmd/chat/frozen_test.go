package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

// TestFrozenWriterLosesLittleTime: the worker that writes a partition is
// frozen (SIGSTOP) for three times its lease while messages keep being
// created; another worker takes the partition over, and the deliveries the
// frozen one held go back to the queue when the broker gives its connection
// up, so no message created meanwhile waits more than a few seconds to be
// readable, rather than until the freeze ends.
func TestFrozenWriterLosesLittleTime(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs the services")
	}
	cfg := testenv.ConfigOn(t, "", func(c *config.Config) { c.Partitions = 1 })
	db := testenv.DB(t, cfg)
	api := start(t, cfg, true, false)
	workers := []*system{startBinaryCommand(t, cfg, "work"), startBinaryCommand(t, cfg, "work")}
	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "frozen"}).object(t)["token"].(string)
	api.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	path := "/applications/" + token + "/chats/1/messages"
	first := api.must(t, 201, "POST", path, map[string]any{"body": "before"}).object(t)
	api.eventually(t, fmt.Sprintf("%s/%v", path, first["number"]), nil)

	// The writer of the one partition.
	list, err := partition.NewTable(db, cfg.Namespace).List(context.Background())
	if err != nil || len(list) != 1 {
		t.Fatalf("partitions: %v, %v", list, err)
	}
	var frozen *system
	for _, w := range workers {
		if strings.Contains(list[0].Owner, fmt.Sprintf("/%d/", w.proc.Pid)) {
			frozen = w
		}
	}
	if frozen == nil {
		t.Fatalf("no worker started here holds the partition (owner %q)", list[0].Owner)
	}
	if err := frozen.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = frozen.proc.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)

	const freeze = 15 * time.Second
	var (
		mu   sync.Mutex
		lags []time.Duration
		wg   sync.WaitGroup
	)
	end := time.Now().Add(freeze)
	for i := 0; time.Now().Before(end); i++ {
		r := api.call(t, "POST", path, map[string]any{"body": fmt.Sprint("during ", i)})
		if r.Status != http.StatusCreated {
			t.Fatalf("create during the freeze: %d %s", r.Status, r.Body)
		}
		created := time.Now()
		msg := fmt.Sprintf("%s/%v", path, r.object(t)["number"])
		wg.Go(func() {
			for time.Since(created) < 2*freeze {
				// Not api.call: it may end the test, which only the test's
				// own goroutine may do.
				if resp, err := client.Get(api.URL + msg); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						mu.Lock()
						lags = append(lags, time.Since(created))
						mu.Unlock()
						return
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Errorf("%s not readable %s after its 201", msg, 2*freeze)
		})
		time.Sleep(250 * time.Millisecond)
	}
	wg.Wait()
	resume()
	worst := time.Duration(0)
	for _, l := range lags {
		worst = max(worst, l)
	}
	t.Logf("%d messages created during a %s freeze of their partition's writer; the slowest readable %s after its 201", len(lags), freeze, worst.Round(10*time.Millisecond))
	if worst >= 10*time.Second {
		t.Errorf("a message created during the freeze took %s to be readable; want under 10 s", worst.Round(10*time.Millisecond))
	}
}
