// Package readmodel answers the API's reads from the read side: the MySQL
// read tables for gets and lists, the search index for searches, with the
// page and list types the API writes out.
package readmodel

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/catalog"
)

// Application is an application as the read side holds it.
type Application struct {
	Token      string
	Name       string
	ChatsCount int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Chat is a chat as the read side holds it.
type Chat struct {
	Number        int64
	Name          string
	MessagesCount int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Message is a message as the read side holds it. A deleted message keeps
// its place in lists and among a chat's changes, with no body.
type Message struct {
	ChatNumber int64
	Number     int64
	Body       string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	DeletedAt  time.Time // zero unless deleted
}

// Deleted reports whether the message was deleted.
func (m Message) Deleted() bool { return !m.DeletedAt.IsZero() }

// messageColumns are what scanMessage reads, after any columns before them.
const messageColumns = "number, body, created_at, updated_at, deleted_at"

// scanMessage reads messageColumns, after dest (columns before them).
func scanMessage(rows *sql.Rows, m *Message, dest ...any) error {
	var deleted sql.NullTime
	if err := rows.Scan(append(dest, &m.Number, &m.Body, &m.CreatedAt, &m.UpdatedAt, &deleted)...); err != nil {
		return err
	}
	m.DeletedAt = deleted.Time
	return nil
}

// Page selects a slice of a list. Numbers are dense, so page p is the number
// range ((p-1)*PerPage, p*PerPage]: an index range, as cheap on page 20,000
// as on page 1. A number whose create failed leaves its page one short.
type Page struct {
	Number  int64
	PerPage int64
}

// List is one page of a list. What pagination needs is read at once; the
// items are read when Each asks for them, a slice of the page at a time, so
// a page of large messages is never held whole and no database connection
// is held while a slow client takes its answer.
type List[T any] struct {
	Total int64 // items in the whole list
	Last  int64 // highest number in the whole list: the last page holds it
	read  func(ctx context.Context, yield func(T) error) error
}

// ListOf is a page whose items are already in memory: what another read
// side (an in-memory one in tests, a cache) answers through the same type.
func ListOf[T any](total, last int64, items ...T) List[T] {
	return List[T]{Total: total, Last: last, read: func(ctx context.Context, yield func(T) error) error {
		for _, it := range items {
			if err := yield(it); err != nil {
				return err
			}
		}
		return nil
	}}
}

// Each calls fn with each item of the page, in order, and stops at the
// first error, fn's or the database's.
func (l List[T]) Each(ctx context.Context, fn func(T) error) error {
	if l.read == nil {
		return nil
	}
	return l.read(ctx, fn)
}

// Collect returns the page's items at once.
func (l List[T]) Collect(ctx context.Context) ([]T, error) {
	out := []T{}
	err := l.Each(ctx, func(v T) error {
		out = append(out, v)
		return nil
	})
	return out, err
}

// Pages are read in slices of numbers. A body is at most 64 KiB, so a slice
// of messages holds at most 2 MiB; a name is at most 255 characters, so a
// whole page of chats (1,000) is one slice.
const (
	messageSlice = 32
	chatSlice    = 1000
)

// sliced reads the numbers lo..hi a slice at a time with read, and hands
// each slice's items to yield before it reads the next.
func sliced[T any](ctx context.Context, lo, hi, size int64, read func(ctx context.Context, lo, hi int64) ([]T, error), yield func(T) error) error {
	for ; lo <= hi; lo += size {
		items, err := read(ctx, lo, min(lo+size-1, hi))
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

// Queries reads the MySQL read tables.
type Queries struct {
	db                    *sql.DB
	apps, chats, messages string
}

// NewQueries returns the queries of a namespace.
func NewQueries(db *sql.DB, namespace string) *Queries {
	t := catalog.New(namespace).ReadTables()
	return &Queries{db: db, apps: t.Applications, chats: t.Chats, messages: t.Messages}
}

func unavailable(err error) error {
	return apperr.Unavailable(apperr.DepDatabase, err, "the database is unavailable; retry later")
}

// Application returns one application.
func (q *Queries) Application(ctx context.Context, token string) (Application, error) {
	a := Application{Token: token}
	err := q.db.QueryRowContext(ctx, "SELECT name, chats_count, created_at, updated_at FROM "+q.apps+
		" WHERE token = ? AND created_at IS NOT NULL", token).Scan(&a.Name, &a.ChatsCount, &a.CreatedAt, &a.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return a, apperr.NotFound("application not found")
	}
	if err != nil {
		return a, unavailable(err)
	}
	return a, nil
}

// Chat returns one chat of an application.
func (q *Queries) Chat(ctx context.Context, token string, number int64) (Chat, error) {
	c := Chat{Number: number}
	err := q.db.QueryRowContext(ctx, "SELECT name, messages_count, created_at, updated_at FROM "+q.chats+
		" WHERE token = ? AND number = ? AND created_at IS NOT NULL", token, number).Scan(&c.Name, &c.MessagesCount, &c.CreatedAt, &c.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return c, apperr.NotFound("chat not found")
	}
	if err != nil {
		return c, unavailable(err)
	}
	return c, nil
}

// Message returns one message of a chat; a deleted one is
// apperr.MessageDeleted.
func (q *Queries) Message(ctx context.Context, token string, chat, number int64) (Message, error) {
	m := Message{ChatNumber: chat, Number: number}
	var deleted sql.NullTime
	err := q.db.QueryRowContext(ctx, "SELECT body, created_at, updated_at, deleted_at FROM "+q.messages+
		" WHERE token = ? AND chat_number = ? AND number = ? AND created_at IS NOT NULL", token, chat, number).Scan(&m.Body, &m.CreatedAt, &m.UpdatedAt, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return m, apperr.NotFound("message not found")
	}
	if err != nil {
		return m, unavailable(err)
	}
	if deleted.Valid {
		return m, apperr.MessageDeleted()
	}
	return m, nil
}

// Chats returns a page of an application's chats.
func (q *Queries) Chats(ctx context.Context, token string, p Page) (List[Chat], error) {
	var l List[Chat]
	var err error
	if l.Total, l.Last, err = q.chatCounts(ctx, token); err != nil {
		return l, err
	}
	lo, hi := p.bounds()
	hi = min(hi, l.Last) // no chat has a higher number
	l.read = func(ctx context.Context, yield func(Chat) error) error {
		return sliced(ctx, lo, hi, chatSlice, func(ctx context.Context, lo, hi int64) ([]Chat, error) {
			return q.chatRange(ctx, token, lo, hi)
		}, yield)
	}
	return l, nil
}

// ChatSpan returns an application's chats in span s, by number (a chat's
// number is its cursor): the first s.Limit numbered above s.After, or the
// last below s.Before. A chat whose create is stored after a later one's
// joins the list late, as it does on a page.
func (q *Queries) ChatSpan(ctx context.Context, token string, s Span) (Slice[Chat], error) {
	var c Slice[Chat]
	var err error
	if c.Total, c.Last, err = q.chatCounts(ctx, token); err != nil {
		return c, err
	}
	query := "SELECT number, name, messages_count, created_at, updated_at FROM " + q.chats +
		" WHERE token = ? AND number > ? AND created_at IS NOT NULL ORDER BY number LIMIT ?"
	bound := s.After
	if s.Before > 0 {
		query = "SELECT number, name, messages_count, created_at, updated_at FROM " + q.chats +
			" WHERE token = ? AND number < ? AND created_at IS NOT NULL ORDER BY number DESC LIMIT ?"
		bound = s.Before
	}
	// A span is at most a page, and a page of chats is one read.
	items, err := q.readChats(ctx, query, token, bound, min(s.Limit, chatSlice))
	if err != nil {
		return c, err
	}
	slices.SortFunc(items, func(a, b Chat) int { return cmp.Compare(a.Number, b.Number) })
	c.List = ListOf(c.Total, c.Last, items...)
	if len(items) > 0 {
		c.From, c.To = items[0].Number, items[len(items)-1].Number
	}
	return c, nil
}

// chatCounts reads how many chats an application has and the highest
// number among them; an application not yet readable is not found.
func (q *Queries) chatCounts(ctx context.Context, token string) (total, last int64, err error) {
	err = q.db.QueryRowContext(ctx, "SELECT chats_count, last_chat_number FROM "+q.apps+
		" WHERE token = ? AND created_at IS NOT NULL", token).Scan(&total, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, apperr.NotFound("application not found")
	}
	if err != nil {
		return 0, 0, unavailable(err)
	}
	return total, last, nil
}

// chatRange reads the chats numbered lo..hi.
func (q *Queries) chatRange(ctx context.Context, token string, lo, hi int64) ([]Chat, error) {
	return q.readChats(ctx, "SELECT number, name, messages_count, created_at, updated_at FROM "+q.chats+
		" WHERE token = ? AND number BETWEEN ? AND ? AND created_at IS NOT NULL ORDER BY number", token, lo, hi)
}

// readChats reads the chats a query selects.
func (q *Queries) readChats(ctx context.Context, query string, args ...any) ([]Chat, error) {
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []Chat
	for rows.Next() {
		var c Chat
		if err := rows.Scan(&c.Number, &c.Name, &c.MessagesCount, &c.CreatedAt, &c.UpdatedAt); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// Messages returns a page of a chat's messages.
func (q *Queries) Messages(ctx context.Context, token string, chat int64, p Page) (List[Message], error) {
	var l List[Message]
	err := q.db.QueryRowContext(ctx, "SELECT messages_count, last_message_number FROM "+q.chats+
		" WHERE token = ? AND number = ? AND created_at IS NOT NULL", token, chat).Scan(&l.Total, &l.Last)
	if errors.Is(err, sql.ErrNoRows) {
		return l, apperr.NotFound("chat not found")
	}
	if err != nil {
		return l, unavailable(err)
	}
	lo, hi := p.bounds()
	hi = min(hi, l.Last) // no message has a higher number
	l.read = func(ctx context.Context, yield func(Message) error) error {
		return sliced(ctx, lo, hi, messageSlice, func(ctx context.Context, lo, hi int64) ([]Message, error) {
			return q.messageRange(ctx, token, chat, lo, hi)
		}, yield)
	}
	return l, nil
}

// messageRange reads the messages of a chat numbered lo..hi.
func (q *Queries) messageRange(ctx context.Context, token string, chat, lo, hi int64) ([]Message, error) {
	rows, err := q.db.QueryContext(ctx, "SELECT "+messageColumns+" FROM "+q.messages+
		" WHERE token = ? AND chat_number = ? AND number BETWEEN ? AND ? AND created_at IS NOT NULL ORDER BY number", token, chat, lo, hi)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := make([]Message, 0, hi-lo+1)
	for rows.Next() {
		m := Message{ChatNumber: chat}
		if err := scanMessage(rows, &m); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

func (p Page) bounds() (int64, int64) {
	return (p.Number-1)*p.PerPage + 1, p.Number * p.PerPage
}
