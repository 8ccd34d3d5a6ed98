package idempotency_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/idempotency"
	"github.com/chatsys/chat/internal/testenv"
)

const token = "abcdefghijklmnopqrstuvwxyz"

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// onEachBackend runs test on the single Redis server and on a cluster.
func onEachBackend(t *testing.T, test func(t *testing.T, cfg config.Config)) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	for _, b := range testenv.RedisBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			test(t, testenv.ConfigOn(t, b.URL(t)))
		})
	}
}

// retryAfter is the wait a refusal carries; 0 when it is no
// *commands.RetryError.
func retryAfter(err error) time.Duration {
	if r, ok := errors.AsType[*commands.RetryError](err); ok {
		return r.After
	}
	return 0
}

func TestStore(t *testing.T) { onEachBackend(t, testStore) }

func testStore(t *testing.T, cfg config.Config) {
	rdb := testenv.Redis(t, cfg)
	const lease = 400 * time.Millisecond
	s := idempotency.New(rdb, cfg.Namespace, idempotency.Options{Retention: time.Hour, Lease: lease, MaxKeys: 3, Wait: 50 * time.Millisecond}, nil)
	ctx := context.Background()
	fp := "fingerprint of a CreateChat"
	claim := func(scope, key, fp string) (*commands.Claim, error) {
		t.Helper()
		return s.Claim(ctx, scope, key, fp)
	}
	state := func(scope, key, fp string, want commands.ClaimState) *commands.Claim {
		t.Helper()
		c, err := claim(scope, key, fp)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != want {
			t.Fatalf("claim state %v, want %v", c.State, want)
		}
		return c
	}

	// A new key is the caller's; a retry meanwhile is told it is in flight,
	// and one with another request that the key is taken.
	first := state(token, "k1", fp, commands.ClaimFresh)
	_, err := claim(token, "k1", fp)
	if !errors.Is(err, commands.ErrKeyInFlight) || retryAfter(err) <= 0 || retryAfter(err) > lease {
		t.Fatalf("a retry in flight: %v, retry after %s", err, retryAfter(err))
	}
	if _, err := claim(token, "k1", "fingerprint of another CreateChat"); !errors.Is(err, commands.ErrKeyReused) {
		t.Fatalf("another request under the key: %v", err)
	}

	// The saved event survives its owner: after the lease, a retry resumes
	// it; the first owner may no longer save.
	want := commands.Outcome{EventID: uuid.Must(uuid.NewV7()), Number: 7, Version: 1, At: time.Now().UTC().Truncate(time.Microsecond)}
	if err := s.Save(ctx, first, want); err != nil {
		t.Fatal(err)
	}
	time.Sleep(lease + 50*time.Millisecond)
	second := state(token, "k1", fp, commands.ClaimResume)
	if second.Outcome != want {
		t.Fatalf("resumed outcome %+v, want %+v", second.Outcome, want)
	}
	if err := s.Save(ctx, first, want); !errors.Is(err, commands.ErrKeyLost) {
		t.Fatalf("a save by a displaced owner: %v", err)
	}

	// Once done (by whichever attempt saw the confirm), retries replay it.
	if err := s.Done(ctx, first); err != nil {
		t.Fatal(err)
	}
	if c := state(token, "k1", fp, commands.ClaimReplay); c.Outcome != want {
		t.Fatalf("replayed outcome %+v, want %+v", c.Outcome, want)
	}

	// A released key starts afresh; an abandoned one is resumed at once.
	c := state(token, "k2", fp, commands.ClaimFresh)
	if err := s.Release(ctx, c); err != nil {
		t.Fatal(err)
	}
	c = state(token, "k2", fp, commands.ClaimFresh)
	o := commands.Outcome{EventID: uuid.Must(uuid.NewV7()), Token: "zyxwvutsrqponmlkjihgfedcba", Version: 1, At: time.Now().UTC().Truncate(time.Microsecond)}
	if err := s.Save(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	if err := s.Abandon(ctx, c); err != nil {
		t.Fatal(err)
	}
	if c := state(token, "k2", fp, commands.ClaimResume); c.Outcome != o {
		t.Fatalf("resumed outcome %+v, want %+v", c.Outcome, o)
	}

	// An owner that stopped before saving an event leaves a fresh start.
	state(token, "k3", fp, commands.ClaimFresh)
	time.Sleep(lease + 50*time.Millisecond)
	state(token, "k3", fp, commands.ClaimFresh)

	// Three keys are the scope's limit; other scopes have their own.
	_, err = claim(token, "k4", fp)
	if !errors.Is(err, commands.ErrKeyLimit) || retryAfter(err) < 59*time.Minute {
		t.Fatalf("a fourth key: %v, retry after %s", err, retryAfter(err))
	}
	state("", "k4", fp, commands.ClaimFresh)
	state("bcdefghijklmnopqrstuvwxyza", "k4", fp, commands.ClaimFresh)

	// Every key of a scope carries its hash tag, and expires.
	keys, err := testenv.Keys(ctx, rdb, cfg.Namespace+":idem:*")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3+5 {
		t.Errorf("keys %v: want 3 indexes and 5 records", keys)
	}
	for _, k := range keys {
		if !strings.Contains(k, "{"+token+"}") && !strings.Contains(k, "{bcdefghijklmnopqrstuvwxyza}") && !strings.Contains(k, "{"+cfg.Namespace+":applications}") {
			t.Errorf("key %s has no scope hash tag", k)
		}
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("key %s expires in %s, want within the hour", k, ttl)
		}
	}
}

// TestClaimWaitsForTheAttemptInFlight: a retry that arrives while the first
// attempt runs waits for its outcome rather than answering at once.
func TestClaimWaitsForTheAttemptInFlight(t *testing.T) {
	onEachBackend(t, testClaimWaits)
}

func testClaimWaits(t *testing.T, cfg config.Config) {
	s := idempotency.New(testenv.Redis(t, cfg), cfg.Namespace, idempotency.Options{Retention: time.Hour, Lease: 10 * time.Second, MaxKeys: 10, Wait: 5 * time.Second}, nil)
	ctx := context.Background()
	fp := "fingerprint of an EditMessage"
	first, err := s.Claim(ctx, token, "k", fp)
	if err != nil {
		t.Fatal(err)
	}
	want := commands.Outcome{EventID: uuid.Must(uuid.NewV7()), Version: 3, At: time.Now().UTC().Truncate(time.Microsecond)}
	if err := s.Save(ctx, first, want); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		if err := s.Done(ctx, first); err != nil {
			t.Error(err)
		}
	}()
	began := time.Now()
	retry, err := s.Claim(ctx, token, "k", fp)
	if err != nil {
		t.Fatal(err)
	}
	if retry.State != commands.ClaimReplay || retry.Outcome != want {
		t.Fatalf("retry %v %+v, want a replay of %+v", retry.State, retry.Outcome, want)
	}
	if took := time.Since(began); took < 150*time.Millisecond || took > 2*time.Second {
		t.Errorf("the retry waited %s; want about 200 ms", took)
	}
}
