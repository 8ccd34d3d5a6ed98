package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chatsys/chat/catalog"
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

	load := startMessageLoad(t, []*system{a, b}, token)
	time.Sleep(500 * time.Millisecond)
	wipe(t, cfg.Namespace)
	load.mark()
	// While the state is rebuilt the API stays in its load balancer: ready,
	// with the numbering reported unavailable.
	testenv.Eventually(t, 10*time.Second, "/readyz reporting the numbering unavailable", func() bool {
		r := a.call(t, http.MethodGet, "/readyz", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("/readyz during the rebuild: %d %s", r.Status, r.Body)
		}
		return r.object(t)["checks"].(map[string]any)["numbering"] == "unavailable"
	})
	load.waitCreated(50, 30*time.Second)
	got, refused := load.stop()
	if refused == 0 {
		t.Error("no command was refused while the numbering state was missing")
	}
	wantEachOnceAndReadable(t, a, token, got)
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

// TestRedisMasterKilledUnderLoad kills with SIGKILL the Redis Cluster master
// that serves an application's numbering while clients create its messages:
// its replica takes over, the numbering of its slots is rebuilt from the
// event store, and creates are answered 201 again within 10 s of the kill;
// no number is handed out twice, and every 201 reads back as written.
func TestRedisMasterKilledUnderLoad(t *testing.T) {
	t.Parallel()
	cluster := testenv.NewCluster(t)
	cfg := testenv.ConfigOn(t, cluster.URL)
	api := start(t, cfg, true, false)
	start(t, cfg, false, true)
	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "crash"}).object(t)["token"].(string)
	for i := 0; i < 2; i++ {
		api.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	}
	load := startMessageLoad(t, []*system{api}, token)
	load.waitCreated(100, 30*time.Second)
	killed := time.Now()
	addr := cluster.KillMasterOf(t, catalog.New(cfg.Namespace).AppSlot(token))
	load.mark()
	load.waitCreated(100, 60*time.Second)
	got, refused := load.stop()
	back := load.back()
	if refused == 0 || back.Before(killed) {
		t.Fatalf("no create was refused after the master at %s was killed (%d refused)", addr, refused)
	}
	t.Logf("master %s killed: creates answered 201 again after %s (%d refused)", addr, back.Sub(killed).Round(100*time.Millisecond), refused)
	// About 9.5 s on an idle two-core machine (the failover itself takes
	// the node timeout and an election, then a publish timeout and a second
	// of settling); a build that waited twice a 5 s publish timeout, or a
	// minute for the slot map, took 16 s and more. The bound leaves room for
	// a loaded machine without letting those through.
	if took := back.Sub(killed); took > 13*time.Second {
		t.Errorf("creates answered 201 again %s after the kill; want within 13 s", took.Round(100*time.Millisecond))
	}
	wantEachOnceAndReadable(t, api, token, got)
}
