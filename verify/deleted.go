package verify

import (
	"context"

	"github.com/chatsys/chat/events"
)

// uncount takes off their chats' counts the messages of f that are deleted
// and whose create the log holds up to upTo: a chat counts the messages
// that are created and not deleted.
func (c *check) uncount(ctx context.Context, f *fold, p part, upTo int64) error {
	byStream := make(map[string]msgKey, len(f.deleted))
	ids := make([]string, 0, len(f.deleted))
	for k := range f.deleted {
		id := events.MessageStream(k.token, k.chat, k.number)
		byStream[id] = k
		ids = append(ids, id)
	}
	return c.v.cfg.Store.CreatedStreams(ctx, c.conn, p.id, upTo, ids, func(id string) error {
		k := byStream[id]
		get(f.chats, chatKey{k.token, k.chat}).count--
		return nil
	})
}
