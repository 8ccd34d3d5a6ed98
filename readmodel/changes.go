package readmodel

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/chatsys/chat/apperr"
)

// Change is a message as it reads after its latest create, edit or delete,
// with the position that event holds among the chat's changes: a cursor. A
// chat's changes are ordered by position, creates, edits and deletes
// alike; an edit or a delete moves its message to a later position.
type Change struct {
	Message
	Position int64
}

// Span selects a slice of a list by cursor: the first Limit after After,
// or, when Before is set, the last Limit before Before.
type Span struct {
	After, Before int64
	Limit         int64
}

// Slice is what a cursor read answers: a list whose From and To are the
// cursors of its first and last item (0 when it is empty), known before its
// items are read, so that the links to the slices around it can go first.
type Slice[T any] struct {
	List[T]
	From, To int64
}

// Changes is one slice of a chat's changes, read a few at a time like a
// page's; its cursors are positions.
type Changes = Slice[Change]

// ChangesOf is a slice whose items are already in memory (see ListOf).
func ChangesOf(total int64, items ...Change) Changes {
	c := Changes{List: ListOf(total, 0, items...)}
	if len(items) > 0 {
		c.From, c.To = items[0].Position, items[len(items)-1].Position
	}
	return c
}

// Changes returns the changes of a chat in span s, in position order.
func (q *Queries) Changes(ctx context.Context, token string, chat int64, s Span) (Changes, error) {
	var c Changes
	err := q.db.QueryRowContext(ctx, "SELECT messages_count FROM "+q.chats+
		" WHERE token = ? AND number = ? AND created_at IS NOT NULL", token, chat).Scan(&c.Total)
	if errors.Is(err, sql.ErrNoRows) {
		return c, apperr.NotFound("chat not found")
	}
	if err != nil {
		return c, unavailable(err)
	}
	// The positions come from the index alone; the rows are then read a
	// slice of positions at a time. A row edited in between has moved past
	// the slice and is left out of it: it comes later, at its new position.
	positions, err := q.positions(ctx, token, chat, s)
	if err != nil || len(positions) == 0 {
		return c, err
	}
	c.From, c.To = positions[0], positions[len(positions)-1]
	c.read = func(ctx context.Context, yield func(Change) error) error {
		for chunk := range slices.Chunk(positions, messageSlice) {
			items, err := q.changeRange(ctx, token, chat, chunk[0], chunk[len(chunk)-1])
			if err != nil {
				return err
			}
			for _, it := range items {
				if err := yield(it); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return c, nil
}

// positions returns the positions of the changes in s, ascending.
func (q *Queries) positions(ctx context.Context, token string, chat int64, s Span) ([]int64, error) {
	query := "SELECT position FROM " + q.messages + " WHERE token = ? AND chat_number = ? AND position > ? AND created_at IS NOT NULL ORDER BY position LIMIT ?"
	bound := s.After
	if s.Before > 0 {
		query = "SELECT position FROM " + q.messages + " WHERE token = ? AND chat_number = ? AND position < ? AND position > 0 AND created_at IS NOT NULL ORDER BY position DESC LIMIT ?"
		bound = s.Before
	}
	rows, err := q.db.QueryContext(ctx, query, token, chat, bound, s.Limit)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := make([]int64, 0, s.Limit)
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	slices.Sort(out)
	return out, nil
}

// changeRange reads the changes of a chat at positions lo..hi.
func (q *Queries) changeRange(ctx context.Context, token string, chat, lo, hi int64) ([]Change, error) {
	rows, err := q.db.QueryContext(ctx, "SELECT position, "+messageColumns+" FROM "+q.messages+
		" WHERE token = ? AND chat_number = ? AND position BETWEEN ? AND ? AND created_at IS NOT NULL ORDER BY position", token, chat, lo, hi)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		c := Change{Message: Message{ChatNumber: chat}}
		if err := scanMessage(rows, &c.Message, &c.Position); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}
