package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
)

// TestRedisLossNeverReissuesANumber wipes the namespace's Redis state in the
// middle of a concurrent load: commands answer 503 while the state is rebuilt
// from the event store, no number that got a 201 is handed out again, every
// 201 reads back as written, and creates into existing chats work afterwards.
func TestRedisLossNeverReissuesANumber(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	cfg.PublishTimeout = 500 * time.Millisecond // the recovery waits twice this
	a := start(t, cfg, true, false)
	b := start(t, cfg, true, false)
	start(t, cfg, false, true)
	token := a.must(t, 201, "POST", "/applications", map[string]any{"name": "loss"}).object(t)["token"].(string)
	for i := 0; i < 2; i++ {
		a.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	}

	type created struct {
		chat, number int64
		body         string
	}
	var (
		mu          sync.Mutex
		got         []created
		refused     int
		wg          sync.WaitGroup
		stop        = make(chan struct{})
		afterWipe   = make(chan struct{})
		createdPost int
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*system{a, b}[w%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				chat := int64(1 + i%2)
				body := fmt.Sprintf("w%d-%d", w, i)
				r := s.call(t, http.MethodPost, fmt.Sprintf("/applications/%s/chats/%d/messages", token, chat), map[string]any{"body": body})
				mu.Lock()
				switch r.Status {
				case http.StatusCreated:
					var m struct{ Number int64 }
					r.json(t, &m)
					got = append(got, created{chat, m.Number, body})
					select {
					case <-afterWipe:
						createdPost++
					default:
					}
				case http.StatusServiceUnavailable:
					refused++
				default:
					t.Errorf("unexpected %d %s", r.Status, r.Body)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	wipe(t, cfg.Namespace)
	close(afterWipe)
	testenv.Eventually(t, 30*time.Second, "creates succeeding after the rebuild", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return createdPost >= 50
	})
	close(stop)
	wg.Wait()
	if refused == 0 {
		t.Error("no command was refused while the numbering state was missing")
	}

	seen := map[[2]int64]string{}
	for _, c := range got {
		k := [2]int64{c.chat, c.number}
		if prev, dup := seen[k]; dup {
			t.Fatalf("chat %d message %d was handed out twice (%q and %q)", c.chat, c.number, prev, c.body)
		}
		seen[k] = c.body
	}
	for _, c := range got {
		r := a.eventually(t, fmt.Sprintf("/applications/%s/chats/%d/messages/%d", token, c.chat, c.number), nil)
		if body := r.object(t)["body"]; body != c.body {
			t.Fatalf("chat %d message %d reads %q, but its 201 was for %q", c.chat, c.number, body, c.body)
		}
	}
	t.Logf("%d creates confirmed, %d refused during the rebuild", len(got), refused)
}

// wipe deletes every Redis key of a namespace at once (one DEL on the one
// server), as a flush or a restart without persistence would.
func wipe(t *testing.T, namespace string) {
	cfg := testenv.Config(t)
	rdb := testenv.Redis(t, cfg)
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, namespace+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}
