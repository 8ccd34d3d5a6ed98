package projections

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/chatsys/chat/mysqldb/stmt"
)

// A deleted message keeps its row, without a body and with deleted_at, so
// that lists keep its number's place and streams see the delete at its
// position. A chat's messages_count counts the rows that are created and
// not deleted, whatever order the create and the delete come in.

type deletion struct {
	token        string
	chat, number int64
	version      int64
	at           time.Time
	position     int64
}

// applyDeletes marks the plan's deleted messages, one at a time (deletes
// are rare), and takes the ones that were counted off their chats' counts.
func (p *plan) applyDeletes(ctx context.Context, tx *sql.Tx, m *MySQL) error {
	for _, d := range p.deletes {
		var created, deleted bool
		err := tx.QueryRowContext(ctx, "SELECT created_at IS NOT NULL, deleted_at IS NOT NULL FROM "+m.t.Messages+
			" WHERE token = ? AND chat_number = ? AND number = ? FOR UPDATE", d.token, d.chat, d.number).Scan(&created, &deleted)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// Deleted before its create is applied: a row that reads skip
			// until the create makes it a deleted message.
			_, err = tx.ExecContext(ctx, "INSERT INTO "+m.t.Messages+" (token, chat_number, number, body, version, created_at, updated_at, position, deleted_at) VALUES (?, ?, ?, '', ?, NULL, ?, ?, ?)",
				d.token, d.chat, d.number, d.version, d.at, d.position, d.at)
		case err == nil:
			// deleted_at is the first delete's, whatever order two that
			// raced are applied in.
			_, err = tx.ExecContext(ctx, "UPDATE "+m.t.Messages+" SET body = '', deleted_at = LEAST(COALESCE(deleted_at, ?), ?),"+
				" updated_at = IF(? > version, ?, updated_at), position = GREATEST(position, ?), version = GREATEST(version, ?)"+
				" WHERE token = ? AND chat_number = ? AND number = ?",
				d.at, d.at, d.version, d.at, d.position, d.version, d.token, d.chat, d.number)
			if err == nil && created && !deleted {
				p.countChat(chatKey{d.token, d.chat}, 0, -1)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// uncountDeleted takes off their chats' counts the plan's creates that
// found their message deleted already (its delete was stored first).
// affected is what the creates' upserts reported: one per row inserted,
// so a count of exactly one per create means none found a row, and the
// common case costs no query.
func (p *plan) uncountDeleted(ctx context.Context, tx *sql.Tx, m *MySQL, affected int64) error {
	if affected == int64(len(p.creates)) {
		return nil
	}
	for start := 0; start < len(p.creates); start += rowsPerStatement {
		chunk := p.creates[start:min(start+rowsPerStatement, len(p.creates))]
		args := make([]any, 0, 3*len(chunk))
		for _, r := range chunk {
			args = append(args, r[0], r[1], r[2])
		}
		rows, err := tx.QueryContext(ctx, "SELECT token, chat_number FROM "+m.t.Messages+" WHERE (token, chat_number, number) IN ("+
			stmt.Tuples(3, len(chunk))+") AND deleted_at IS NOT NULL", args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k chatKey
			if err := rows.Scan(&k.token, &k.number); err != nil {
				rows.Close()
				return err
			}
			p.countChat(k, 0, -1)
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	return nil
}
