package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

func writerActive(t *testing.T, s *system) bool {
	r := s.call(t, "GET", "/metrics", nil)
	return r.Status == 200 && strings.Contains(string(r.Body), "\nchat_eventstore_writer_active 1\n")
}

// TestWriterFailover runs two workers: they share the partitions, and when
// the first stops the second takes all of them over, losing nothing.
func TestWriterFailover(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	api := start(t, cfg, true, false)
	first := start(t, cfg, false, true)
	testenv.Eventually(t, 10*time.Second, "the first worker writing", func() bool { return writerActive(t, first) })
	second := start(t, cfg, false, true)
	testenv.Eventually(t, 15*time.Second, "both workers writing, a share each", func() bool {
		return writerActive(t, first) && writerActive(t, second) && len(writers(t, db, cfg)) == 2
	})

	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "failover"}).object(t)["token"].(string)
	api.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	path := "/applications/" + token + "/chats/1/messages"
	before := createMany(t, []*system{api}, 8, 100, path, func(i int) any { return map[string]any{"body": fmt.Sprint(i)} })
	first.stop()
	after := createMany(t, []*system{api}, 8, 100, path, func(i int) any { return map[string]any{"body": fmt.Sprint(i)} })
	wantDense(t, "messages", append(before, after...), 200)
	testenv.Eventually(t, 10*time.Second, "the second worker writing every partition", func() bool {
		w := writers(t, db, cfg)
		return len(w) == 1 && w[0] == cfg.Partitions
	})
	api.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return num(r.object(t)["messages_count"]) == 200 })
}

// writers returns how many partitions each worker holds a live lease on.
func writers(t *testing.T, db *sql.DB, cfg config.Config) []int {
	t.Helper()
	list, err := partition.NewTable(db, cfg.Namespace).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]int{}
	for _, s := range list {
		if s.Owner != "" && s.Left > 0 {
			held[s.Owner]++
		}
	}
	var out []int
	for _, n := range held {
		out = append(out, n)
	}
	return out
}
