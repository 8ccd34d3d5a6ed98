package main

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/chatsys/chat/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestConcurrentNumberingOnCluster is TestConcurrentNumbering, smaller, on a
// Redis Cluster: two API processes hand out every number exactly once.
func TestConcurrentNumberingOnCluster(t *testing.T) {
	t.Parallel()
	cfg := testenv.ConfigOn(t, testenv.SharedCluster(t).URL)
	a := start(t, cfg, true, false)
	b := start(t, cfg, true, false)
	start(t, cfg, false, true)
	apis := []*system{a, b}

	// Applications land in different slots, so on different masters.
	var wg sync.WaitGroup
	for app := 0; app < 3; app++ {
		token := a.must(t, 201, "POST", "/applications", map[string]any{"name": fmt.Sprint("busy ", app)}).object(t)["token"].(string)
		wg.Add(1)
		go func() {
			defer wg.Done()
			const chats, messages = 10, 100
			got := createMany(t, apis, 8, chats, "/applications/"+token+"/chats", func(i int) any { return map[string]any{"name": fmt.Sprint("chat ", i)} })
			wantDense(t, "chats", got, chats)
			path := fmt.Sprintf("/applications/%s/chats/1/messages", token)
			got = createMany(t, apis, 8, messages, path, func(i int) any { return map[string]any{"body": fmt.Sprint("message ", i)} })
			wantDense(t, path, got, messages)
		}()
	}
	wg.Wait()
}
