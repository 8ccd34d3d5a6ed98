// Package verify folds the event store and compares the fold with every
// projection, reporting each difference in words a person can act on.
package verify

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/partition"
	"github.com/chatsys/chat/searchindex"
)

// Report is the outcome of a verification.
type Report struct {
	Events      int64    // events folded for the read tables
	Differences []string // each a sentence; empty when everything agrees
	Checked     struct{ Applications, Chats, Messages, SearchChats int }
}

// Config is what a verification needs.
type Config struct {
	DB        *sql.DB
	Store     *eventstore.Store
	Codec     *events.Codec
	Search    *searchindex.Client // nil: search is not checked
	Namespace string
	// Progress (optional) is told after every batch how many events have
	// been read of how many.
	Progress func(label string, done, total int64)
	// MaxReported bounds the differences listed; the rest are counted
	// (100 when 0).
	MaxReported int
	// MaxFold bounds the events one fold takes in (1<<18 when 0): a
	// partition of more is folded and compared a slice of its entities at
	// a time, each reading its log again.
	MaxFold int64
}

// Verifier compares the projections of a namespace with its event log.
type Verifier struct {
	cfg   Config
	names catalog.Catalog
}

// New returns a verifier.
func New(cfg Config) *Verifier {
	if cfg.MaxReported == 0 {
		cfg.MaxReported = 100
	}
	if cfg.MaxFold == 0 {
		cfg.MaxFold = 1 << 18
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, int64, int64) {}
	}
	return &Verifier{cfg: cfg, names: catalog.New(cfg.Namespace)}
}

// The log is folded in batches of at most batchEvents events and, for logs
// of large messages, batchBytes of payload.
const (
	batchEvents = 10000
	batchBytes  = 16 << 20
)

// part is a partition and the positions its projections are at.
type part struct {
	id                int
	mysqlAt, searchAt int64
	slices            int64
}

func (p part) upTo() int64 { return max(p.mysqlAt, p.searchAt) }

// Run verifies. The read tables are compared with the events up to their
// positions, inside one consistent snapshot; the search index with the
// events up to its own checkpoint. Partitions are folded and compared one
// at a time (no application spans two), each a slice at a time when it is
// large, so a fold never holds more than MaxFold events' worth.
func (v *Verifier) Run(ctx context.Context) (*Report, error) {
	conn, release, err := v.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	parts, err := v.partitions(ctx, conn)
	if err != nil {
		return nil, err
	}
	tokens, err := v.tokens(ctx, conn, len(parts))
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	c := &check{v: v, conn: conn, rep: rep}
	for _, p := range parts {
		c.total += p.upTo() * p.slices
	}
	for _, p := range parts {
		if err := c.partition(ctx, p, tokens[p.id]); err != nil {
			return nil, err
		}
	}
	if n := len(rep.Differences); n > v.cfg.MaxReported {
		rep.Differences = append(rep.Differences[:v.cfg.MaxReported], fmt.Sprintf("… and %d more differences", n-v.cfg.MaxReported))
	}
	return rep, nil
}

// snapshot returns a connection inside a consistent snapshot of the
// database; release rolls it back and closes the connection.
func (v *Verifier) snapshot(ctx context.Context) (*sql.Conn, func(), error) {
	conn, err := v.cfg.DB.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		conn.Close()
	}, nil
}

// partitions returns every partition with its projections' positions and
// the slices it is verified in.
func (v *Verifier) partitions(ctx context.Context, conn *sql.Conn) ([]part, error) {
	var parts []part
	err := scan(ctx, conn, "SELECT partition_id FROM "+v.names.Partitions()+" ORDER BY partition_id", nil, func(rows *sql.Rows) error {
		var p part
		if err := rows.Scan(&p.id); err != nil {
			return err
		}
		parts = append(parts, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	cp := checkpoint.New(v.names.Namespace())
	for i := range parts {
		p := &parts[i]
		if err := conn.QueryRowContext(ctx, "SELECT position FROM "+v.names.ReadTables().Position+" WHERE id = ?", p.id).Scan(&p.mysqlAt); err != nil {
			return nil, fmt.Errorf("read tables' position in partition %d: %w", p.id, err)
		}
		if p.searchAt, err = cp.Get(ctx, conn, "search", p.id); err != nil {
			return nil, err
		}
		p.slices = max(1, (p.upTo()+v.cfg.MaxFold-1)/v.cfg.MaxFold)
	}
	return parts, nil
}

// tokens returns, by partition, the tokens of every application the read
// tables hold a row of, sorted. Each table's are read through its primary
// key, one index entry per application.
func (v *Verifier) tokens(ctx context.Context, conn *sql.Conn, partitions int) ([][]string, error) {
	seen := map[string]bool{}
	t := v.names.ReadTables()
	for _, table := range []string{t.Applications, t.Chats, t.Messages} {
		err := scan(ctx, conn, "SELECT DISTINCT token FROM "+table, nil, func(rows *sql.Rows) error {
			var token string
			err := rows.Scan(&token)
			seen[token] = true
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([][]string, partitions)
	for token := range seen {
		p := partition.Of(token, partitions)
		out[p] = append(out[p], token)
	}
	for _, ts := range out {
		slices.Sort(ts)
	}
	return out, nil
}

// scan runs query and calls fn for each row.
func scan(ctx context.Context, conn *sql.Conn, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := conn.QueryContext(ctx, query, args...)
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
