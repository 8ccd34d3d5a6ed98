package main

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/internal/testenv"
)

// TestDependencyOutages takes Redis and then RabbitMQ away from one API
// process: commands answer 503 with Retry-After and leave nothing behind,
// reads keep working, and commands work again once the dependency is back.
func TestDependencyOutages(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	redisURL, _ := url.Parse(cfg.RedisURL)
	amqpURL, _ := url.Parse(cfg.AMQPURL)
	redisProxy := testenv.NewProxy(t, redisURL.Host)
	amqpProxy := testenv.NewProxy(t, amqpURL.Host)
	redisURL.Host, amqpURL.Host = redisProxy.Addr(), amqpProxy.Addr()
	apiCfg := cfg
	apiCfg.RedisURL, apiCfg.AMQPURL = redisURL.String(), amqpURL.String()
	apiCfg.PublishTimeout = 2 * time.Second
	api := startBinary(t, apiCfg)
	start(t, cfg, false, true)

	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "outages"}).object(t)["token"].(string)
	api.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	messages := "/applications/" + token + "/chats/1/messages"
	api.must(t, 201, "POST", messages, map[string]any{"body": "one"})
	api.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return num(r.object(t)["messages_count"]) == 1 })

	unavailable := func(what string) {
		t.Helper()
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/applications", map[string]any{"name": "x"}},
			{"POST", "/applications/" + token + "/chats", nil},
			{"POST", messages, map[string]any{"body": "lost"}},
			{"PATCH", messages + "/1", map[string]any{"body": "edited"}},
		} {
			r := api.call(t, req.method, req.path, req.body)
			if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.errorCode(t) != "unavailable" {
				t.Errorf("%s down: %s %s answered %d %q %s", what, req.method, req.path, r.Status, r.Header.Get("Retry-After"), r.Body)
			}
		}
		if r := api.call(t, "GET", messages+"/1", nil); r.Status != 200 || r.object(t)["body"] != "one" {
			t.Errorf("%s down: read answered %d %s", what, r.Status, r.Body)
		}
		if r := api.call(t, "GET", "/readyz", nil); r.Status != 503 {
			t.Errorf("%s down: /readyz answered %d", what, r.Status)
		}
	}

	redisProxy.Down()
	unavailable("Redis")
	redisProxy.Up()
	api.must(t, 201, "POST", messages, map[string]any{"body": "two"})

	keyedChat := api.callWith(t, "POST", "/applications/"+token+"/chats", map[string]any{"name": "keyed"}, keyed("outage-chat"))
	if keyedChat.Status != 201 {
		t.Fatalf("keyed chat create: %d %s", keyedChat.Status, keyedChat.Body)
	}

	amqpProxy.Down()
	// Commands refused while the API knows it has no connection are
	// certainly not stored; wait until it knows.
	testenv.Eventually(t, 10*time.Second, "the API to notice RabbitMQ is gone", func() bool {
		return api.call(t, "GET", "/readyz", nil).Status == 503
	})
	unavailable("RabbitMQ")
	// A retry of a confirmed keyed create needs no broker: its answer is known.
	if r := api.callWith(t, "POST", "/applications/"+token+"/chats", map[string]any{"name": "keyed"}, keyed("outage-chat")); r.Status != 201 || string(r.Body) != string(keyedChat.Body) {
		t.Errorf("RabbitMQ down: a retried keyed create answered %d %s, want 201 %s", r.Status, r.Body, keyedChat.Body)
	}
	// Commands refused while the broker is known to be down reserve nothing:
	// they leave no gap in the numbering.
	for range 20 {
		if r := api.call(t, "POST", messages, map[string]any{"body": "refused"}); r.Status != 503 {
			t.Fatalf("RabbitMQ down: message create answered %d %s", r.Status, r.Body)
		}
	}
	amqpProxy.Up()
	var n int64
	testenv.Eventually(t, 20*time.Second, "publishing again after RabbitMQ is back", func() bool {
		r := api.call(t, "POST", messages, map[string]any{"body": "three"})
		if r.Status == 201 {
			n = num(r.object(t)["number"])
		}
		return r.Status == 201
	})
	// At most one publish can have been attempted and lost while the
	// connection came back; none of the 25 refused creates took a number.
	if n != 3 && n != 4 {
		t.Fatalf("the message after the outage got number %d, want 3 (no gap) or 4 (one attempted publish lost)", n)
	}
	api.eventually(t, fmt.Sprintf("%s/%d", messages, n), func(r response) bool { return r.object(t)["body"] == "three" })
	api.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return num(r.object(t)["messages_count"]) == 3 })
	if n == 4 {
		if r := api.call(t, "GET", messages+"/3", nil); r.Status != 404 {
			t.Errorf("the unconfirmed message 3 reads %d %s", r.Status, r.Body)
		}
		if r := api.call(t, "PATCH", messages+"/3", map[string]any{"body": "x"}); r.Status != 404 {
			t.Errorf("editing the unconfirmed message 3 answered %d %s", r.Status, r.Body)
		}
	}
	if r := api.call(t, "GET", messages+"/1", nil); r.object(t)["body"] != "one" {
		t.Errorf("an edit refused during the outage was applied: %s", r.Body)
	}
	// The outages refused dozens of requests; the log tells of each outage
	// once (and of its end), not once per request.
	if n := strings.Count(api.logs(), "dependency unavailable"); n < 2 || n > 4 {
		t.Errorf("%d log lines say a dependency is unavailable; want one or two per outage:\n%s", n, api.logs())
	}
	var apps int
	if err := testenv.DB(t, cfg).QueryRow("SELECT COUNT(*) FROM " + catalog.New(cfg.Namespace).ReadTables().Applications).Scan(&apps); err != nil || apps != 1 {
		t.Errorf("%d applications stored (%v): a create refused during an outage was stored", apps, err)
	}
	if r := api.call(t, "GET", "/readyz", nil); r.Status != 200 {
		t.Errorf("/readyz answered %d after the outages", r.Status)
	}
}
