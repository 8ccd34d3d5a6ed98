package ratelimit_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/ratelimit"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func ptr(n int64) *int64 { return &n }

// TestBuckets runs the limiter's script on the configured Redis and on a
// Redis Cluster: a budget holds rate × burst requests, refuses the next
// with the wait until one is back, refills at its rate, and follows an
// application's override, the newest one kept.
func TestBuckets(t *testing.T) {
	for _, b := range testenv.RedisBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			testBuckets(t, testenv.ConfigOn(t, b.URL(t)))
		})
	}
}

func testBuckets(t *testing.T, cfg config.Config) {
	ctx := context.Background()
	rdb := testenv.Redis(t, cfg)
	s := ratelimit.NewStore(rdb, cfg.Namespace)
	const token = "abcdefghijklmnopqrstuvwxyz"

	if got, err := s.Take(ctx, ratelimit.Commands, token, 5, 2); err != nil || got.Limited {
		t.Fatalf("an unknown application is counted: %+v, %v", got, err)
	}
	if err := numbering.New(rdb, cfg.Namespace).ApplicationConfirmed(ctx, token); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Take(ctx, ratelimit.Commands, token, 0, 2); err != nil || got.Limited {
		t.Fatalf("rate 0 limits: %+v, %v", got, err)
	}

	// 5/s with 2 s of burst: 10 at once, then refused until 1/5 s passes.
	for i := int64(9); i >= 0; i-- {
		got, err := s.Take(ctx, ratelimit.Commands, token, 5, 2)
		if err != nil || !got.Limited || !got.Allowed || got.Remaining != i || got.Rate != 5 || got.Burst != 2 {
			t.Fatalf("request %d of the burst: %+v, %v", 10-i, got, err)
		}
	}
	refused, err := s.Take(ctx, ratelimit.Commands, token, 5, 2)
	if err != nil || refused.Allowed || refused.Remaining != 0 {
		t.Fatalf("request past the burst: %+v, %v", refused, err)
	}
	if refused.Wait <= 0 || refused.Wait > 200*time.Millisecond {
		t.Errorf("wait %s; want within (0, 200ms]", refused.Wait)
	}
	if refused.Full < refused.Wait || refused.Full > 2*time.Second {
		t.Errorf("until full %s; want within [%s, 2s]", refused.Full, refused.Wait)
	}
	// Reads have a budget of their own.
	if got, err := s.Take(ctx, ratelimit.Reads, token, 5, 2); err != nil || !got.Allowed || got.Remaining != 9 {
		t.Fatalf("a read after the commands' budget ran out: %+v, %v", got, err)
	}
	// Waiting as told lets the next one through.
	time.Sleep(refused.Wait)
	if got, err := s.Take(ctx, ratelimit.Commands, token, 5, 2); err != nil || !got.Allowed {
		t.Fatalf("a request after the wait: %+v, %v", got, err)
	}

	// An override replaces the defaults it names; an older one changes nothing.
	overrides := []ratelimit.Override{
		{Token: token, Version: 3, Commands: ptr(1), Burst: ptr(1)},
		{Token: token, Version: 2, Commands: ptr(0)},
	}
	if err := s.SetOverrides(ctx, overrides); err != nil {
		t.Fatal(err)
	}
	if o, ok, err := s.Override(ctx, token); err != nil || !ok || o.Version != 3 || *o.Commands != 1 || *o.Burst != 1 || o.Reads != nil {
		t.Fatalf("override read back: %+v %v %v", o, ok, err)
	}
	// The bucket keeps its level (none left) under the new size.
	got, err := s.Take(ctx, ratelimit.Commands, token, 5, 2)
	if err != nil || got.Rate != 1 || got.Burst != 1 {
		t.Fatalf("a request under the override: %+v, %v", got, err)
	}
	if got.Allowed {
		got, err = s.Take(ctx, ratelimit.Commands, token, 5, 2)
	}
	if err != nil || got.Allowed || got.Wait <= 0 || got.Wait > time.Second {
		t.Fatalf("past the override's budget of 1: %+v, %v; want refused within 1 s", got, err)
	}
	if got, err := s.Take(ctx, ratelimit.Reads, token, 5, 2); err != nil || got.Rate != 5 || got.Burst != 1 {
		t.Fatalf("reads keep the default rate with the override's burst: %+v, %v", got, err)
	}

	// 0 lifts the limit whatever the default.
	if err := s.SetOverrides(ctx, []ratelimit.Override{{Token: token, Version: 4, Commands: ptr(0)}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Take(ctx, ratelimit.Commands, token, 5, 2); err != nil || got.Limited {
		t.Fatalf("an override of 0 limits: %+v, %v", got, err)
	}
}
