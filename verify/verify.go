// Package verify folds the event store and compares the fold with every
// projection, reporting each difference in words a person can act on.
package verify

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/searchindex"
)

// Report is the outcome of a verification.
type Report struct {
	Events      int64    // events folded for the read tables
	Differences []string // each a sentence; empty when everything agrees
	Checked     struct{ Applications, Chats, Messages, SearchChats int }
}

type entity struct {
	text    uint64 // hash of the name or body
	version int64
	created bool
	count   int64 // chats of an application, messages of a chat
}

type chatKey struct {
	token string
	chat  int64
}

type msgKey struct {
	token        string
	chat, number int64
}

type fold struct {
	apps  map[string]*entity
	chats map[chatKey]*entity
	msgs  map[msgKey]*entity
}

func hash(s string) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, s)
	return h.Sum64()
}

func get[K comparable](m map[K]*entity, k K) *entity {
	e := m[k]
	if e == nil {
		e = &entity{}
		m[k] = e
	}
	return e
}

// set applies a named or bodied event: the newest version wins.
func (e *entity) set(text string, version int64) {
	if version > e.version {
		e.text, e.version = hash(text), version
	}
}

// apply folds one event. A type the fold does not know is an error: a
// verification that skipped it would vouch for tables it never checked.
func (f *fold) apply(env events.Envelope) error {
	switch ev := env.Event.(type) {
	case events.ApplicationCreated:
		a := get(f.apps, ev.Token)
		a.created = true
		a.set(ev.Name, env.StreamVersion)
	case events.ApplicationRenamed:
		get(f.apps, ev.Token).set(ev.Name, env.StreamVersion)
	case events.ChatCreated:
		c := get(f.chats, chatKey{ev.Token, ev.Number})
		c.created = true
		c.set(ev.Name, env.StreamVersion)
		get(f.apps, ev.Token).count++
	case events.ChatRenamed:
		get(f.chats, chatKey{ev.Token, ev.Number}).set(ev.Name, env.StreamVersion)
	case events.MessageCreated:
		m := get(f.msgs, msgKey{ev.Token, ev.ChatNumber, ev.Number})
		m.created = true
		m.set(ev.Body, env.StreamVersion)
		get(f.chats, chatKey{ev.Token, ev.ChatNumber}).count++
	case events.MessageEdited:
		get(f.msgs, msgKey{ev.Token, ev.ChatNumber, ev.Number}).set(ev.Body, env.StreamVersion)
	default:
		return fmt.Errorf("type %s is not handled by verify", env.Event.EventType())
	}
	return nil
}

// The log is folded in batches of at most batchEvents events and, for logs
// of large messages, batchBytes of payload.
const (
	batchEvents = 10000
	batchBytes  = 16 << 20
)

// Verifier compares the projections of a namespace with its event log.
type Verifier struct {
	db    *sql.DB
	store *eventstore.Store
	codec *events.Codec
	es    *searchindex.Client // nil: search is not checked
	names catalog.Catalog
	// MaxReported bounds the differences listed; the rest are counted.
	MaxReported int
}

// New returns a verifier.
func New(db *sql.DB, store *eventstore.Store, codec *events.Codec, es *searchindex.Client, namespace string) *Verifier {
	return &Verifier{db: db, store: store, codec: codec, es: es, names: catalog.New(namespace), MaxReported: 100}
}

// Run verifies. The read tables are compared with the events up to their
// checkpoint, inside one consistent snapshot; the search index with the
// events up to its own checkpoint.
func (v *Verifier) Run(ctx context.Context, progress io.Writer) (*Report, error) {
	rep := &Report{}
	conn, err := v.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		return nil, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")

	// Each partition is folded up to each checkpoint of its own; the folds
	// of all partitions make one, as no application spans two.
	var parts []int
	err = scan(ctx, conn, "SELECT partition_id FROM "+v.names.Partitions()+" ORDER BY partition_id", func(rows *sql.Rows) error {
		var p int
		if err := rows.Scan(&p); err != nil {
			return err
		}
		parts = append(parts, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	forMySQL := &fold{map[string]*entity{}, map[chatKey]*entity{}, map[msgKey]*entity{}}
	forSearch := &fold{map[string]*entity{}, map[chatKey]*entity{}, map[msgKey]*entity{}}
	start := time.Now()
	var folded int64
	for _, p := range parts {
		var mysqlAt int64
		if err := conn.QueryRowContext(ctx, "SELECT position FROM "+v.names.ReadTables().Position+" WHERE id = ?", p).Scan(&mysqlAt); err != nil {
			return nil, fmt.Errorf("read tables' position in partition %d: %w", p, err)
		}
		searchAt, err := checkpoint.New(v.names.Namespace()).Get(ctx, conn, "search", p)
		if err != nil {
			return nil, err
		}
		upTo := max(mysqlAt, searchAt)
		pos := int64(0)
		for pos < upTo {
			batch, err := v.store.ReadWith(ctx, conn, p, pos, batchEvents, batchBytes)
			if err != nil {
				return nil, err
			}
			if len(batch) == 0 {
				break
			}
			for _, st := range batch {
				if st.Position > upTo {
					break
				}
				if st.Position != pos+1 {
					rep.Differences = append(rep.Differences, fmt.Sprintf("partition %d: position %d follows %d", p, st.Position, pos))
				}
				pos = st.Position
				env, err := v.codec.Decode(st.Record)
				if err != nil {
					rep.Differences = append(rep.Differences, fmt.Sprintf("event at partition %d position %d cannot be decoded by this build: %v", p, st.Position, err))
					continue
				}
				if st.Position <= mysqlAt {
					if err := forMySQL.apply(env); err != nil {
						return nil, fmt.Errorf("event at partition %d position %d: %w", p, st.Position, err)
					}
					rep.Events++
				}
				if st.Position <= searchAt {
					if err := forSearch.apply(env); err != nil {
						return nil, fmt.Errorf("event at partition %d position %d: %w", p, st.Position, err)
					}
				}
			}
			folded += int64(len(batch))
			if batch[len(batch)-1].Position > upTo {
				break
			}
			fmt.Fprintf(progress, "\rfolded %d events, partition %d of %d (%.0f/s)", folded, p+1, len(parts), float64(folded)/time.Since(start).Seconds())
		}
		if pos < upTo {
			rep.Differences = append(rep.Differences, fmt.Sprintf("partition %d: positions stop at %d, short of %d where its projections are", p, pos, upTo))
		}
	}
	fmt.Fprintln(progress)

	if err := v.compareTables(ctx, conn, forMySQL, rep); err != nil {
		return nil, err
	}
	if v.es != nil {
		if err := v.compareSearch(ctx, forSearch, rep); err != nil {
			return nil, err
		}
	}
	if n := len(rep.Differences); n > v.MaxReported {
		rep.Differences = append(rep.Differences[:v.MaxReported], fmt.Sprintf("… and %d more differences", n-v.MaxReported))
	}
	return rep, nil
}

func describe(e *entity) string {
	if !e.created {
		return "not created"
	}
	return "created"
}

func (v *Verifier) compareTables(ctx context.Context, conn *sql.Conn, f *fold, rep *Report) error {
	diff := func(format string, args ...any) {
		rep.Differences = append(rep.Differences, fmt.Sprintf(format, args...))
	}
	// Applications.
	seen := map[string]bool{}
	err := scan(ctx, conn, "SELECT token, name, version, created_at IS NOT NULL, chats_count FROM "+v.names.ReadTables().Applications, func(rows *sql.Rows) error {
		var (
			token, name string
			got         entity
		)
		if err := rows.Scan(&token, &name, &got.version, &got.created, &got.count); err != nil {
			return err
		}
		rep.Checked.Applications++
		seen[token] = true
		want := f.apps[token]
		switch {
		case want == nil:
			diff("application %s is in the read table but not in the event log", token)
		case got.created != want.created:
			diff("application %s is %s in the read table but %s in the event log", token, describe(&got), describe(want))
		case want.version > 0 && (hash(name) != want.text || got.version != want.version):
			diff("application %s has name %q at version %d in the read table; the event log has version %d", token, name, got.version, want.version)
		case got.count != want.count:
			diff("application %s has chats_count %d; the event log has %d chats", token, got.count, want.count)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for token := range f.apps {
		if !seen[token] {
			diff("application %s is in the event log but missing from the read table", token)
		}
	}
	// Chats.
	seenChats := map[chatKey]bool{}
	err = scan(ctx, conn, "SELECT token, number, name, version, created_at IS NOT NULL, messages_count FROM "+v.names.ReadTables().Chats, func(rows *sql.Rows) error {
		var (
			k    chatKey
			name string
			got  entity
		)
		if err := rows.Scan(&k.token, &k.chat, &name, &got.version, &got.created, &got.count); err != nil {
			return err
		}
		rep.Checked.Chats++
		seenChats[k] = true
		want := f.chats[k]
		switch {
		case want == nil:
			diff("chat %s/%d is in the read table but not in the event log", k.token, k.chat)
		case got.created != want.created:
			diff("chat %s/%d is %s in the read table but %s in the event log", k.token, k.chat, describe(&got), describe(want))
		case want.version > 0 && (hash(name) != want.text || got.version != want.version):
			diff("chat %s/%d has name %q at version %d in the read table; the event log has version %d", k.token, k.chat, name, got.version, want.version)
		case got.count != want.count:
			diff("chat %s/%d has messages_count %d; the event log has %d messages", k.token, k.chat, got.count, want.count)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k := range f.chats {
		if !seenChats[k] {
			diff("chat %s/%d is in the event log but missing from the read table", k.token, k.chat)
		}
	}
	// Messages.
	seenMsgs := make(map[msgKey]bool, len(f.msgs))
	err = scan(ctx, conn, "SELECT token, chat_number, number, body, version, created_at IS NOT NULL FROM "+v.names.ReadTables().Messages, func(rows *sql.Rows) error {
		var (
			k    msgKey
			body string
			got  entity
		)
		if err := rows.Scan(&k.token, &k.chat, &k.number, &body, &got.version, &got.created); err != nil {
			return err
		}
		rep.Checked.Messages++
		seenMsgs[k] = true
		want := f.msgs[k]
		switch {
		case want == nil:
			diff("message %s/%d/%d is in the read table but not in the event log", k.token, k.chat, k.number)
		case got.created != want.created:
			diff("message %s/%d/%d is %s in the read table but %s in the event log", k.token, k.chat, k.number, describe(&got), describe(want))
		case hash(body) != want.text || got.version != want.version:
			diff("message %s/%d/%d has a body at version %d in the read table that differs from the event log's version %d", k.token, k.chat, k.number, got.version, want.version)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k := range f.msgs {
		if !seenMsgs[k] {
			diff("message %s/%d/%d is in the event log but missing from the read table", k.token, k.chat, k.number)
		}
	}
	return nil
}

func scan(ctx context.Context, conn *sql.Conn, query string, fn func(*sql.Rows) error) error {
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// compareSearch compares, chat by chat, how many documents the index holds
// with how many messages the event log has up to the search checkpoint.
func (v *Verifier) compareSearch(ctx context.Context, f *fold, rep *Report) error {
	want := map[chatKey]int64{}
	for k, m := range f.msgs {
		if m.created {
			want[chatKey{k.token, k.chat}]++
		}
	}
	// Chats the read side knows but the search fold has no message for
	// must have no documents either.
	for k := range f.chats {
		if _, ok := want[k]; !ok {
			want[k] = 0
		}
	}
	keys := make([]chatKey, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].token != keys[j].token {
			return keys[i].token < keys[j].token
		}
		return keys[i].chat < keys[j].chat
	})
	index := searchindex.NewIndex(v.es, v.names.Namespace())
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
			rep.Checked.SearchChats++
			if got != want[k] {
				rep.Differences = append(rep.Differences, fmt.Sprintf("chat %s/%d has %d documents in the search index; the event log has %d messages", k.token, k.chat, got, want[k]))
			}
			return nil
		})
	}
	return g.Wait()
}
