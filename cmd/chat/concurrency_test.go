package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/internal/testenv"
)

// createMany runs n creates on the given systems in turn from workers
// goroutines and returns the numbers answered by the 201s.
func createMany(t *testing.T, systems []*system, workers, n int, path string, body func(i int) any) []int64 {
	t.Helper()
	var (
		mu      sync.Mutex
		numbers []int64
		wg      sync.WaitGroup
		next    = make(chan int)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s := systems[i%len(systems)]
				r := s.call(t, http.MethodPost, path, body(i))
				if r.Status != http.StatusCreated {
					t.Errorf("POST %s: %d %s", path, r.Status, r.Body)
					continue
				}
				var v struct{ Number int64 }
				r.json(t, &v)
				mu.Lock()
				numbers = append(numbers, v.Number)
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	sort.Slice(numbers, func(i, j int) bool { return numbers[i] < numbers[j] })
	return numbers
}

// wantDense fails unless numbers are exactly 1..n.
func wantDense(t *testing.T, what string, numbers []int64, n int) {
	t.Helper()
	if len(numbers) != n {
		t.Fatalf("%s: %d numbers, want %d", what, len(numbers), n)
	}
	for i, got := range numbers {
		if got != int64(i+1) {
			t.Fatalf("%s: numbers are not 1..%d exactly once: %v", what, n, numbers)
		}
	}
}

// TestConcurrentNumbering has two API processes create chats and messages at
// once: every number is handed out exactly once, with no gap, and the counts
// come out exact.
func TestConcurrentNumbering(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	a := start(t, cfg, true, false)
	b := start(t, cfg, true, false)
	start(t, cfg, false, true)
	apis := []*system{a, b}

	token := a.must(t, 201, "POST", "/applications", map[string]any{"name": "busy"}).object(t)["token"].(string)
	const chats, messages = 40, 300
	chatNumbers := createMany(t, apis, 16, chats, "/applications/"+token+"/chats", func(i int) any { return map[string]any{"name": fmt.Sprint("chat ", i)} })
	wantDense(t, "chats", chatNumbers, chats)

	// Messages into two chats at once, through both APIs.
	var wg sync.WaitGroup
	for _, chat := range []int{1, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("/applications/%s/chats/%d/messages", token, chat)
			got := createMany(t, apis, 16, messages, path, func(i int) any { return map[string]any{"body": fmt.Sprint("message ", i)} })
			wantDense(t, path, got, messages)
		}()
	}
	wg.Wait()

	for _, chat := range []int{1, 2} {
		b.eventually(t, fmt.Sprintf("/applications/%s/chats/%d", token, chat), func(r response) bool {
			return num(r.object(t)["messages_count"]) == messages
		})
		r := a.must(t, 200, "GET", fmt.Sprintf("/applications/%s/chats/%d/messages?per_page=1000", token, chat), nil)
		var list []struct{ Number int64 }
		r.json(t, &list)
		got := make([]int64, len(list))
		for i, m := range list {
			got[i] = m.Number
		}
		wantDense(t, "listed messages", got, messages)
	}
	a.eventually(t, "/applications/"+token, func(r response) bool { return num(r.object(t)["chats_count"]) == chats })
}

// TestShutdownMidLoad stops the whole process while clients keep creating
// messages: every message that got a 201 is there after a restart, and the
// count matches what is stored.
func TestShutdownMidLoad(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	s := start(t, cfg, true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "restart"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)

	var (
		mu        sync.Mutex
		confirmed []int64
		wg        sync.WaitGroup
		stop      = make(chan struct{})
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", s.URL+"/applications/"+token+"/chats/1/messages", strings.NewReader(`{"body":"under load"}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue // the server is going away
				}
				body := readAll(t, resp)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					r := response{Body: body}
					var m struct{ Number int64 }
					r.json(t, &m)
					mu.Lock()
					confirmed = append(confirmed, m.Number)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	s.stop()
	close(stop)
	wg.Wait()
	if len(confirmed) < 10 {
		t.Fatalf("only %d messages confirmed before shutdown", len(confirmed))
	}

	again := start(t, cfg, true, true)
	again.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool {
		return num(r.object(t)["messages_count"]) >= int64(len(confirmed))
	})
	for _, n := range confirmed {
		again.must(t, 200, "GET", fmt.Sprintf("/applications/%s/chats/1/messages/%d", token, n), nil)
	}
	var stored int64
	db := testenv.DB(t, cfg)
	if err := db.QueryRow("SELECT COUNT(*) FROM "+catalog.New(cfg.Namespace).ReadTables().Messages+" WHERE token = ?", token).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if got := num(again.must(t, 200, "GET", "/applications/"+token+"/chats/1", nil).object(t)["messages_count"]); got != stored {
		t.Errorf("messages_count %d, but %d messages stored", got, stored)
	}
}
