package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/internal/testenv"
)

// TestRabbitNodeLoss runs `chat serve` and `chat work` against a cluster of
// three RabbitMQ nodes, all named in CHAT_AMQP_URL, and stops the node that
// leads the store queue under a steady trickle of creates: every create
// answered 201 reads back, and both processes carry on on another node.
func TestRabbitNodeLoss(t *testing.T) {
	cluster := testenv.StartRabbitCluster(t, 3)
	cfg := testenv.Config(t)
	cfg.AMQPURL = cluster.URLs()
	cfg.PublishTimeout = 3 * time.Second
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	if _, err := broker.DeclareTopology(context.Background(), cfg.AMQPURL, names); err != nil {
		t.Fatal(err)
	}
	// Separate binaries without the race detector: see startBinary.
	api := startBinary(t, cfg)
	worker := startBinaryCommand(t, cfg, "work")

	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "cluster"}).object(t)["token"].(string)
	api.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	messages := "/applications/" + token + "/chats/1/messages"

	var (
		mu       sync.Mutex
		created  = map[int64]string{}
		refused  int
		afterCut int
		cut      bool
		stop     = make(chan struct{})
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			body := fmt.Sprintf("trickle %d", i)
			r := api.call(t, http.MethodPost, messages, map[string]any{"body": body})
			mu.Lock()
			if r.Status == http.StatusCreated {
				var v struct{ Number int64 }
				r.json(t, &v)
				created[v.Number] = body
				if cut {
					afterCut++
				}
			} else {
				refused++
			}
			mu.Unlock()
		}
	}()
	counts := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(created), afterCut
	}

	testenv.Eventually(t, 20*time.Second, "creates flowing", func() bool { n, _ := counts(); return n >= 50 })
	leader, err := cluster.Leader(names.Store)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stopping %s, the leader of %s", leader.Name, names.Store)
	mu.Lock()
	cut = true
	mu.Unlock()
	cluster.Stop(leader)

	testenv.Eventually(t, 60*time.Second, "creates answered 201 again after the node was lost", func() bool { _, n := counts(); return n >= 50 })
	close(stop)
	<-done
	mu.Lock()
	t.Logf("%d created, %d after the loss, %d refused", len(created), afterCut, refused)
	mu.Unlock()

	for _, s := range []*system{api, worker} {
		if r := s.call(t, http.MethodGet, "/readyz", nil); r.Status != http.StatusOK {
			t.Errorf("/readyz after the loss: %d %s", r.Status, r.Body)
		}
	}
	testenv.Eventually(t, 30*time.Second, "the worker consuming the store queue again", func() bool {
		stats, err := broker.QueueStats(context.Background(), cfg.AMQPURL, names.Store)
		return err == nil && stats[0].Consumers > 0
	})
	for n, body := range created {
		r := api.eventually(t, fmt.Sprintf("%s/%d", messages, n), func(r response) bool { return r.Status == http.StatusOK })
		if got := r.object(t)["body"]; got != body {
			t.Errorf("message %d reads %q, want %q", n, got, body)
		}
	}
}
