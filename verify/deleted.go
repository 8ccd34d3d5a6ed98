package verify

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/chatsys/chat/events"
)

// uncount takes off their chats' counts the messages of f that are deleted
// and whose create the log holds up to upTo: a chat counts the messages
// that are created and not deleted.
func (c *check) uncount(ctx context.Context, f *fold, p part, upTo int64) error {
	keys := make([]msgKey, 0, len(f.deleted))
	for k := range f.deleted {
		keys = append(keys, k)
	}
	byStream := make(map[string]msgKey, len(keys))
	for chunk := range slices.Chunk(keys, tokensPerQuery) {
		args := []any{p.id, upTo}
		for _, k := range chunk {
			id := events.MessageStream(k.token, k.chat, k.number)
			byStream[id] = k
			args = append(args, id)
		}
		err := scan(ctx, c.conn, "SELECT stream_id FROM "+c.v.names.Events()+" WHERE partition_id = ? AND position <= ? AND stream_version = 1 AND stream_id IN ("+
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+")", args, func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			k := byStream[id]
			get(f.chats, chatKey{k.token, k.chat}).count--
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
