package main

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/internal/testenv"
)

// TestHangUpsLeaveUsableCreates holds the broker's traffic so that creates
// wait for their confirms, and has every client give up meanwhile; then lets
// the traffic through, so the creates are stored although no request lived
// to register them. Every stored application and chat must then accept
// children, with no Redis rebuild.
func TestHangUpsLeaveUsableCreates(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	apiCfg, amqpGate := gatedBroker(t, cfg)
	apiCfg.PublishTimeout = 20 * time.Second
	s := start(t, apiCfg, true, false)
	start(t, cfg, false, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "hang-ups"}).object(t)["token"].(string)

	amqpGate.Hold()
	defer amqpGate.Release()
	var abandoned atomic.Int64
	hangUp := func(path, body string) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "POST", s.URL+path, strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			abandoned.Add(1)
			return
		}
		resp.Body.Close()
		t.Errorf("POST %s answered %d while the broker was held", path, resp.StatusCode)
	}
	const apps, chats = 5, 20
	var wg sync.WaitGroup
	for i := range apps + chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < apps {
				hangUp("/applications", `{"name":"gone `+strconv.Itoa(i)+`"}`)
			} else {
				hangUp("/applications/"+token+"/chats", `{"name":"gone `+strconv.Itoa(i)+`"}`)
			}
		}()
	}
	wg.Wait()
	if abandoned.Load() != apps+chats {
		t.Fatalf("%d of %d clients hung up", abandoned.Load(), apps+chats)
	}
	amqpGate.Release()

	db := testenv.DB(t, cfg)
	var storedApps, storedChats []string
	testenv.Eventually(t, 30*time.Second, "the abandoned creates to be stored", func() bool {
		storedApps = column(t, db, "SELECT token FROM "+catalog.New(cfg.Namespace).ReadTables().Applications+" WHERE token <> ? AND created_at IS NOT NULL", token)
		storedChats = column(t, db, "SELECT number FROM "+catalog.New(cfg.Namespace).ReadTables().Chats+" WHERE created_at IS NOT NULL")
		return len(storedApps) == apps && len(storedChats) == chats
	})
	for _, app := range storedApps {
		testenv.Eventually(t, 15*time.Second, "a chat in stored application "+app[:6], func() bool {
			return s.call(t, "POST", "/applications/"+app+"/chats", nil).Status == 201
		})
	}
	for _, chat := range storedChats {
		testenv.Eventually(t, 15*time.Second, "a message in stored chat "+chat, func() bool {
			return s.call(t, "POST", "/applications/"+token+"/chats/"+chat+"/messages", map[string]any{"body": "still here"}).Status == 201
		})
	}
}

// column returns the first column of a query's rows as strings.
func column(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
