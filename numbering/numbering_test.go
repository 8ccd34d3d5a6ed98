package numbering_test

import (
	"context"
	"errors"
	"os"
	"sort"
	"sync"
	"testing"

	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/rediscluster"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestNumbering(t *testing.T) {
	for _, b := range testenv.RedisBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			testNumbering(t, testenv.ConfigOn(t, b.URL(t)))
		})
	}
}

func testNumbering(t *testing.T, cfg config.Config) {
	s := numbering.New(testenv.Redis(t, cfg), cfg.Namespace)
	ctx := context.Background()
	const token = "abcdefghijklmnopqrstuvwxyz"

	// Nothing exists before its create is confirmed.
	if _, err := s.ReserveChatNumber(ctx, token); !errors.Is(err, commands.ErrUnknown) {
		t.Fatalf("chat number for an unconfirmed application: %v", err)
	}
	if _, err := s.NextApplicationVersion(ctx, token); !errors.Is(err, commands.ErrUnknown) {
		t.Fatalf("version of an unconfirmed application: %v", err)
	}
	if err := s.ApplicationConfirmed(ctx, token); err != nil {
		t.Fatal(err)
	}
	for want := int64(2); want <= 3; want++ {
		if v, err := s.NextApplicationVersion(ctx, token); err != nil || v != want {
			t.Fatalf("application version %d, %v; want %d", v, err, want)
		}
	}

	// Concurrent reservations hand out 1..n once each.
	const n = 500
	var (
		mu  sync.Mutex
		got []int64
		wg  sync.WaitGroup
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.ReserveChatNumber(ctx, token)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got = append(got, v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("chat numbers are not 1..%d once each: %v", n, got)
		}
	}

	// Messages: numbers need a confirmed chat; edits need a confirmed message.
	if _, err := s.ReserveMessageNumber(ctx, token, 7); !errors.Is(err, commands.ErrUnknown) {
		t.Fatalf("message number in an unconfirmed chat: %v", err)
	}
	if err := s.ChatConfirmed(ctx, token, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextMessageVersion(ctx, token, 7, 1); !errors.Is(err, commands.ErrUnknown) {
		t.Fatalf("edit of a number never handed out: %v", err)
	}
	for want := int64(1); want <= 2; want++ {
		if v, err := s.ReserveMessageNumber(ctx, token, 7); err != nil || v != want {
			t.Fatalf("message number %d, %v; want %d", v, err, want)
		}
	}
	if err := s.MessageFailed(ctx, token, 7, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextMessageVersion(ctx, token, 7, 2); !errors.Is(err, commands.ErrUnknown) {
		t.Fatalf("edit of a message whose create failed: %v", err)
	}
	for want := int64(2); want <= 4; want++ {
		if v, err := s.NextMessageVersion(ctx, token, 7, 1); err != nil || v != want {
			t.Fatalf("message version %d, %v; want %d", v, err, want)
		}
	}
	if v, err := s.NextChatVersion(ctx, token, 7); err != nil || v != 2 {
		t.Fatalf("chat version %d, %v; want 2", v, err)
	}
}

// TestReservationsTogether: reservations of many counters made at once (the
// chats of several applications, so of several slots and, on a cluster,
// several masters), some of a chat that does not exist, hand out each
// existing chat's numbers 1..n once each, and fail only the unknown chat's
// callers. Then the scripts are flushed from every master, as a restart or
// a promoted replica leaves them, and reservations go on from n+1.
func TestReservationsTogether(t *testing.T) {
	for _, b := range testenv.RedisBackends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			cfg := testenv.ConfigOn(t, b.URL(t))
			rdb := testenv.Redis(t, cfg)
			s := numbering.New(rdb, cfg.Namespace)
			ctx := context.Background()
			tokens := []string{"abcdefghijklmnopqrstuvwxyz", "bcdefghijklmnopqrstuvwxyza", "cdefghijklmnopqrstuvwxyzab"}
			for _, token := range tokens {
				if err := s.ApplicationConfirmed(ctx, token); err != nil {
					t.Fatal(err)
				}
				for chat := int64(1); chat <= 3; chat++ {
					if err := s.ChatConfirmed(ctx, token, chat); err != nil {
						t.Fatal(err)
					}
				}
			}
			reserveAtOnce(t, s, tokens, 100, 1)
			err := rediscluster.ForEachMaster(ctx, rdb, func(ctx context.Context, m rediscluster.Master) error {
				return m.Client.ScriptFlush(ctx).Err()
			})
			if err != nil {
				t.Fatal(err)
			}
			reserveAtOnce(t, s, tokens, 100, 101)
		})
	}
}

// reserveAtOnce reserves perChat numbers in chats 1 to 3 of each token, and
// as many in its chat 4, which does not exist, all at once, and checks that
// each chat got from..from+perChat-1 once each and chat 4 only refusals.
func reserveAtOnce(t *testing.T, s *numbering.Store, tokens []string, perChat int, from int64) {
	t.Helper()
	type chatOf struct {
		token string
		chat  int64
	}
	var (
		mu      sync.Mutex
		got     = map[chatOf][]int64{}
		unknown int
		wg      sync.WaitGroup
	)
	for i := range 4 * perChat * len(tokens) {
		c := chatOf{tokens[i%len(tokens)], int64(1 + i/len(tokens)%4)}
		wg.Go(func() {
			n, err := s.ReserveMessageNumber(context.Background(), c.token, c.chat)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case c.chat == 4 && errors.Is(err, commands.ErrUnknown):
				unknown++
			case err != nil:
				t.Errorf("%v: %v", c, err)
			default:
				got[c] = append(got[c], n)
			}
		})
	}
	wg.Wait()
	if want := perChat * len(tokens); unknown != want {
		t.Errorf("%d reservations in unknown chats refused, want %d", unknown, want)
	}
	for _, token := range tokens {
		for chat := int64(1); chat <= 3; chat++ {
			nums := got[chatOf{token, chat}]
			sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
			for i, n := range nums {
				if n != from+int64(i) {
					t.Fatalf("chat %d of %s: numbers are not %d..%d once each: %v", chat, token, from, from+int64(perChat)-1, nums)
				}
			}
			if len(nums) != perChat {
				t.Errorf("chat %d of %s: %d numbers, want %d", chat, token, len(nums), perChat)
			}
		}
	}
}
