package verify

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/chatsys/chat/searchindex"
)

// addSearchWant adds to want, per chat, the messages fold f holds that are
// created: a search document each. Every chat f knows is wanted, with no
// message if it has none: its documents must be none either.
func addSearchWant(want map[chatKey]int64, f *fold) {
	for k := range f.chats {
		want[k] += 0
	}
	for k, m := range f.msgs {
		if m.created {
			want[chatKey{k.token, k.chat}]++
		}
	}
}

// compareSearch compares, chat by chat, how many documents the index holds
// with how many messages the event log has up to the search checkpoint.
func (c *check) compareSearch(ctx context.Context, want map[chatKey]int64) error {
	keys := make([]chatKey, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b chatKey) int {
		return cmp.Or(strings.Compare(a.token, b.token), cmp.Compare(a.chat, b.chat))
	})
	index := searchindex.NewIndex(c.v.cfg.Search, c.v.names.Namespace())
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, k := range keys {
		g.Go(func() error {
			got, err := index.Count(ctx, k.token, k.chat)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			c.rep.Checked.SearchChats++
			if got != want[k] {
				c.diff("chat %s/%d has %d documents in the search index; the event log has %d messages", k.token, k.chat, got, want[k])
			}
			return nil
		})
	}
	return g.Wait()
}
