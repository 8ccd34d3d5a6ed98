package verify

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/chatsys/chat/mysqldb/stmt"
)

// found is a row of a read table.
type found struct {
	text    string // name or body
	version int64
	created bool
	count   int64 // chats_count, messages_count
	deleted bool  // a message deleted
}

// table is a read table as compared with the fold.
type table[K comparable] struct {
	// query selects the rows of the applications it is given (a %s for
	// their placeholders): the key's columns, then the name or body, the
	// version, whether created, and the count.
	query string
	scan  func(*sql.Rows) (K, found, error)
	holds func(K) bool   // whether the slice holds a row
	want  map[K]*entity  // what the log says of the slice's rows
	name  func(K) string // a row in a sentence: "chat <token>/<number>"
	text  func(name string, got found, want *entity) string
	count func(name string, got, want int64) string // nil: no count
}

// tokensPerQuery is the most applications whose rows one query selects.
const tokensPerQuery = 500

// compareRows compares every row of the tokens' applications that the
// slice holds with what the log says of it, then reports the entities of
// the log that no row stands for.
func compareRows[K comparable](ctx context.Context, conn *sql.Conn, t table[K], tokens []string, checked *int, diff func(string)) error {
	for chunk := range slices.Chunk(tokens, tokensPerQuery) {
		err := scan(ctx, conn, fmt.Sprintf(t.query, stmt.Placeholders(len(chunk))), stmt.Args(chunk), func(rows *sql.Rows) error {
			k, got, err := t.scan(rows)
			if err != nil || !t.holds(k) {
				return err
			}
			*checked++
			want := t.want[k]
			if want != nil {
				want.seen = true
			}
			if d := t.differ(k, got, want); d != "" {
				diff(d)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for k, e := range t.want {
		if !e.seen {
			diff(t.name(k) + " is in the event log but missing from the read table")
		}
	}
	return nil
}

// differ says how a row differs from what the log says of it, or "".
func (t table[K]) differ(k K, got found, want *entity) string {
	name := t.name(k)
	switch {
	case want == nil:
		return name + " is in the read table but not in the event log"
	case got.created != want.created:
		return fmt.Sprintf("%s is %s in the read table but %s in the event log", name, describe(got.created), describe(want.created))
	case got.deleted != want.deleted:
		return fmt.Sprintf("%s is %s in the read table but %s in the event log", name, deletedOrNot(got.deleted), deletedOrNot(want.deleted))
	case want.version > 0 && (hash(got.text) != want.text || got.version != want.version):
		return t.text(name, got, want)
	case t.count != nil && got.count != want.count:
		return t.count(name, got.count, want.count)
	}
	return ""
}

func deletedOrNot(deleted bool) string {
	if deleted {
		return "deleted"
	}
	return "not deleted"
}

func describe(created bool) string {
	if !created {
		return "not created"
	}
	return "created"
}

// compareTables compares the read tables' rows of the tokens' applications
// that slice s holds with fold f.
func (c *check) compareTables(ctx context.Context, f *fold, s slice, tokens []string) error {
	t := c.v.names.ReadTables()
	diff := func(d string) { c.rep.Differences = append(c.rep.Differences, d) }
	named := func(name string, got found, want *entity) string {
		return fmt.Sprintf("%s has name %q at version %d in the read table; the event log has version %d", name, got.text, got.version, want.version)
	}
	err := compareRows(ctx, c.conn, table[string]{
		query: "SELECT token, name, version, created_at IS NOT NULL, chats_count FROM " + t.Applications + " WHERE token IN (%s)",
		scan: func(r *sql.Rows) (k string, f found, err error) {
			return k, f, r.Scan(&k, &f.text, &f.version, &f.created, &f.count)
		},
		holds: s.hasApp, want: f.apps, text: named,
		name: func(k string) string { return "application " + k },
		count: func(name string, got, want int64) string {
			return fmt.Sprintf("%s has chats_count %d; the event log has %d chats", name, got, want)
		},
	}, tokens, &c.rep.Checked.Applications, diff)
	if err != nil {
		return err
	}
	err = compareRows(ctx, c.conn, table[chatKey]{
		query: "SELECT token, number, name, version, created_at IS NOT NULL, messages_count FROM " + t.Chats + " WHERE token IN (%s)",
		scan: func(r *sql.Rows) (k chatKey, f found, err error) {
			return k, f, r.Scan(&k.token, &k.chat, &f.text, &f.version, &f.created, &f.count)
		},
		holds: s.hasChat, want: f.chats, text: named,
		name: func(k chatKey) string { return fmt.Sprintf("chat %s/%d", k.token, k.chat) },
		count: func(name string, got, want int64) string {
			return fmt.Sprintf("%s has messages_count %d; the event log has %d messages", name, got, want)
		},
	}, tokens, &c.rep.Checked.Chats, diff)
	if err != nil {
		return err
	}
	return compareRows(ctx, c.conn, table[msgKey]{
		query: "SELECT token, chat_number, number, body, version, created_at IS NOT NULL, deleted_at IS NOT NULL FROM " + t.Messages + " WHERE token IN (%s)",
		scan: func(r *sql.Rows) (k msgKey, f found, err error) {
			return k, f, r.Scan(&k.token, &k.chat, &k.number, &f.text, &f.version, &f.created, &f.deleted)
		},
		holds: s.hasMsg, want: f.msgs,
		name: func(k msgKey) string { return fmt.Sprintf("message %s/%d/%d", k.token, k.chat, k.number) },
		text: func(name string, got found, want *entity) string {
			return fmt.Sprintf("%s has a body at version %d in the read table that differs from the event log's version %d", name, got.version, want.version)
		},
	}, tokens, &c.rep.Checked.Messages, diff)
}
