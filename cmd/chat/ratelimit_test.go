package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
)

// TestRateLimitSharedByProcesses: on one Redis server and on a Redis
// Cluster, two API processes draw an application's commands from one
// budget; past it a command answers 429 rate_limited with Retry-After and
// the budget's fields, publishes nothing and takes no number: after the
// wait it was told, the next create gets the next number, and the chat
// counts only the creates that got a 201. Reads, unlimited, carry no
// fields.
func TestRateLimitSharedByProcesses(t *testing.T) {
	for _, b := range testenv.RedisBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			testRateLimitShared(t, testenv.ConfigOn(t, b.URL(t), func(c *config.Config) {
				c.RateLimitCommands, c.RateLimitBurst = 1, 5 // 5 at once, then 1 a second
			}))
		})
	}
}

func testRateLimitShared(t *testing.T, cfg config.Config) {
	a := start(t, cfg, true, false)
	b := start(t, cfg, true, false)
	start(t, cfg, false, true)
	token := a.must(t, 201, "POST", "/applications", map[string]any{"name": "limited"}).object(t)["token"].(string)
	chat := a.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	if got := chat.Header.Get("RateLimit-Policy"); got != `"commands";q=5;w=5` {
		t.Fatalf("RateLimit-Policy %q on a create", got)
	}
	path := "/applications/" + token + "/chats/1/messages"

	begun := time.Now()
	created, refused := 0, 0
	var retry int
	for i := 0; i < 20; i++ {
		r := []*system{a, b}[i%2].call(t, "POST", path, map[string]any{"body": fmt.Sprint("m", i)})
		switch r.Status {
		case http.StatusCreated:
			created++
			if n := int(r.object(t)["number"].(float64)); n != created {
				t.Fatalf("create %d got number %d", created, n)
			}
		case http.StatusTooManyRequests:
			refused++
			if code := r.errorCode(t); code != "rate_limited" {
				t.Fatalf("429 with code %q", code)
			}
			retry, _ = strconv.Atoi(r.Header.Get("Retry-After"))
			if retry < 1 || r.Header.Get("RateLimit-Policy") != `"commands";q=5;w=5` || !strings.HasPrefix(r.Header.Get("RateLimit"), `"commands";r=0;t=`) {
				t.Fatalf("429 headers: %v", r.Header)
			}
		default:
			t.Fatalf("create %d: %d %s", i, r.Status, r.Body)
		}
	}
	// One budget of 5 (the chat took one) refilling at 1/s: separate
	// budgets per process would have let about twice as many through.
	elapsed := time.Since(begun)
	if most := 4 + int(math.Ceil(elapsed.Seconds())); created < 4 || created > most {
		t.Errorf("%d creates of 20 got a 201 within %s; want 4 to %d", created, elapsed.Round(time.Millisecond), most)
	}
	if refused == 0 {
		t.Fatal("no create was refused")
	}

	// Obeying Retry-After lets the next one through, with the next number.
	time.Sleep(time.Duration(retry) * time.Second)
	next := b.must(t, 201, "POST", path, map[string]any{"body": "after the wait"})
	if n := int(next.object(t)["number"].(float64)); n != created+1 {
		t.Errorf("the create after the wait got number %d, want %d: a refused create took a number", n, created+1)
	}
	a.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool {
		return r.Status == 200 && int(r.object(t)["messages_count"].(float64)) == created+1
	})
	list := a.must(t, 200, "GET", path+"?per_page=100", nil)
	var msgs []map[string]any
	list.json(t, &msgs)
	if len(msgs) != created+1 {
		t.Errorf("the chat lists %d messages, want %d: a refused create was stored", len(msgs), created+1)
	}
	if list.Header.Get("RateLimit") != "" || list.Header.Get("RateLimit-Policy") != "" {
		t.Errorf("a read with reads unlimited carries RateLimit fields: %v", list.Header)
	}
}

// TestRateLimitOverrideSurvivesRedisLoss: `chat limits set` gives one
// application its own budget, which holds at once, and holds again after
// the namespace's Redis keys are lost and rebuilt from the event log.
func TestRateLimitOverrideSurvivesRedisLoss(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	cfg.PublishTimeout = 500 * time.Millisecond // the rebuild waits about twice this
	s := start(t, cfg, true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "overridden"}).object(t)["token"].(string)
	other := s.must(t, 201, "POST", "/applications", map[string]any{"name": "default"}).object(t)["token"].(string)

	out := runLimits(t, cfg, 0, "set", token, "-commands", "1", "-burst", "2")
	if !strings.Contains(out, "1/s        (override)") || !strings.Contains(out, "no limit   (CHAT_RATE_LIMIT_READS)") {
		t.Fatalf("chat limits set printed:\n%s", out)
	}
	runLimits(t, cfg, 1, "set", token, "-commands", "many")

	wantLimited := func(when string) {
		t.Helper()
		refused := 0
		for i := 0; i < 4; i++ {
			r := s.call(t, "POST", "/applications/"+token+"/chats", nil)
			if r.Status == http.StatusTooManyRequests {
				refused++
				if p := r.Header.Get("RateLimit-Policy"); p != `"commands";q=2;w=2` {
					t.Fatalf("%s: RateLimit-Policy %q", when, p)
				}
			} else if r.Status != http.StatusCreated {
				t.Fatalf("%s: %d %s", when, r.Status, r.Body)
			}
		}
		if refused == 0 {
			t.Fatalf("%s: 4 creates at once under a budget of 2, none refused", when)
		}
		for i := 0; i < 4; i++ {
			if r := s.call(t, "POST", "/applications/"+other+"/chats", nil); r.Status != http.StatusCreated || r.Header.Get("RateLimit") != "" {
				t.Fatalf("%s: another application's create: %d %v", when, r.Status, r.Header)
			}
		}
	}
	wantLimited("after chat limits set")

	wipe(t, cfg.Namespace)
	testenv.Eventually(t, 60*time.Second, "the override rebuilt from the event log", func() bool {
		return strings.Contains(runLimits(t, cfg, 0, "show", token), "version 2 of the application")
	})
	testenv.Eventually(t, 60*time.Second, "commands served again", func() bool {
		return s.call(t, "POST", "/applications/"+other+"/chats", nil).Status == http.StatusCreated
	})
	time.Sleep(2 * time.Second) // the budget refills
	wantLimited("after Redis lost the namespace")
}

// runLimits runs `chat limits` on cfg's namespace and returns what it
// printed, failing unless it exits with code.
func runLimits(t *testing.T, cfg config.Config, code int, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if got := run(context.Background(), append([]string{"limits"}, args...), doctorEnv(cfg, nil), &stdout, &stderr); got != code {
		t.Fatalf("chat limits %v exited %d, want %d: %s%s", args, got, code, stdout.String(), stderr.String())
	}
	return stdout.String()
}
