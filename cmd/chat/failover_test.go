package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
)

func writerActive(t *testing.T, s *system) bool {
	r := s.call(t, "GET", "/metrics", nil)
	return r.Status == 200 && strings.Contains(string(r.Body), "\nchat_eventstore_writer_active 1\n")
}

// TestWriterFailover runs two workers: one appends, the other waits as a hot
// standby and takes over when the first stops, losing nothing.
func TestWriterFailover(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	api := start(t, cfg, true, false)
	first := start(t, cfg, false, true)
	testenv.Eventually(t, 10*time.Second, "first worker holds the append lock", func() bool { return writerActive(t, first) })
	second := start(t, cfg, false, true)
	time.Sleep(300 * time.Millisecond)
	if writerActive(t, second) {
		t.Fatal("two workers hold the append lock at once")
	}

	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "failover"}).object(t)["token"].(string)
	api.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	path := "/applications/" + token + "/chats/1/messages"
	before := createMany(t, []*system{api}, 8, 100, path, func(i int) any { return map[string]any{"body": fmt.Sprint(i)} })
	first.stop()
	after := createMany(t, []*system{api}, 8, 100, path, func(i int) any { return map[string]any{"body": fmt.Sprint(i)} })
	wantDense(t, "messages", append(before, after...), 200)
	testenv.Eventually(t, 10*time.Second, "second worker takes over", func() bool { return writerActive(t, second) })
	api.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return num(r.object(t)["messages_count"]) == 200 })
}
