package main

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
)

// messageLoad creates messages in chats 1 and 2 of an application from
// eight clients, through the given APIs in turn, until stopped; a 503 is
// counted as refused and anything else but a 201 fails the test.
type messageLoad struct {
	t     *testing.T
	token string

	mu        sync.Mutex
	got       []created
	refused   int
	sinceMark int
	// lastRefused is when the last 503 came; backAt when the first 201
	// after it came.
	lastRefused, backAt time.Time
	wg                  sync.WaitGroup
	stopped             chan struct{}
}

type created struct {
	chat, number int64
	body         string
}

func startMessageLoad(t *testing.T, apis []*system, token string) *messageLoad {
	l := &messageLoad{t: t, token: token, stopped: make(chan struct{})}
	for w := 0; w < 8; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			s := apis[w%len(apis)]
			for i := 0; ; i++ {
				select {
				case <-l.stopped:
					return
				default:
				}
				chat := int64(1 + i%2)
				body := fmt.Sprintf("w%d-%d", w, i)
				r := s.call(t, http.MethodPost, fmt.Sprintf("/applications/%s/chats/%d/messages", token, chat), map[string]any{"body": body})
				l.mu.Lock()
				switch r.Status {
				case http.StatusCreated:
					var m struct{ Number int64 }
					r.json(t, &m)
					l.got = append(l.got, created{chat, m.Number, body})
					l.sinceMark++
					if l.backAt.Before(l.lastRefused) {
						l.backAt = time.Now()
					}
				case http.StatusServiceUnavailable:
					l.refused++
					l.lastRefused = time.Now()
				default:
					t.Errorf("unexpected %d %s", r.Status, r.Body)
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// mark starts counting the creates confirmed from now on.
func (l *messageLoad) mark() {
	l.mu.Lock()
	l.sinceMark = 0
	l.mu.Unlock()
}

// waitCreated waits until n creates were confirmed since the mark.
func (l *messageLoad) waitCreated(n int, timeout time.Duration) {
	testenv.Eventually(l.t, timeout, fmt.Sprintf("%d creates succeeding", n), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.sinceMark >= n
	})
}

// back returns when creates were last answered 201 again after a 503.
func (l *messageLoad) back() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.backAt
}

// stop ends the load and returns what was confirmed and how many were refused.
func (l *messageLoad) stop() ([]created, int) {
	close(l.stopped)
	l.wg.Wait()
	return l.got, l.refused
}

// wantEachOnceAndReadable fails if a number was handed out twice or a 201
// does not read back as written.
func wantEachOnceAndReadable(t *testing.T, api *system, token string, got []created) {
	t.Helper()
	seen := map[[2]int64]string{}
	for _, c := range got {
		k := [2]int64{c.chat, c.number}
		if prev, dup := seen[k]; dup {
			t.Fatalf("chat %d message %d was handed out twice (%q and %q)", c.chat, c.number, prev, c.body)
		}
		seen[k] = c.body
	}
	for _, c := range got {
		r := api.eventually(t, fmt.Sprintf("/applications/%s/chats/%d/messages/%d", token, c.chat, c.number), nil)
		if body := r.object(t)["body"]; body != c.body {
			t.Fatalf("chat %d message %d reads %q, but its 201 was for %q", c.chat, c.number, body, c.body)
		}
	}
}
