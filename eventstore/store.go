// Package eventstore keeps the append-only log of every event in MySQL: the
// single source of truth that projections are folded from. The log is split
// into partitions (an application's events all go to one); each partition
// has one appender at a time (a lease with a fencing epoch) and its own
// positions, assigned by that appender under the partition's row lock, so
// they commit in order and a reader tailing a partition by position never
// skips a row that commits late.
package eventstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/plainjson"
	"github.com/chatsys/chat/mysqldb/stmt"
)

// Stored is a record as the event store keeps it.
type Stored struct {
	Partition  int
	Position   int64
	RecordedAt time.Time
	events.Record
}

// Store reads the event log.
type Store struct {
	db         *sql.DB
	table      string
	partitions string
	erasures   string
}

// New returns the event store of a namespace.
func New(db *sql.DB, namespace string) *Store {
	names := catalog.New(namespace)
	return &Store{db: db, table: names.Events(), partitions: names.Partitions(), erasures: names.Erasures()}
}

const columns = "position, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, occurred_at, recorded_at"

// Querier runs a query: a pool, a connection or a transaction.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Read returns a partition's events after position, in position order: up
// to limit events, and no more once their payloads add up to maxBytes (the
// event that reaches it is the last; a batch always has at least one event).
func (s *Store) Read(ctx context.Context, partition int, after int64, limit, maxBytes int) ([]Stored, error) {
	return s.ReadWith(ctx, s.db, partition, after, limit, maxBytes)
}

// ReadWith is Read through q, for a reader that needs a transaction's snapshot.
func (s *Store) ReadWith(ctx context.Context, q Querier, partition int, after int64, limit, maxBytes int) ([]Stored, error) {
	out, err := s.readMany(ctx, q, []ReadRequest{{Partition: partition, After: after, Limit: limit, MaxBytes: maxBytes}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ReadRequest asks for what Read returns: a partition's events after a
// position, up to Limit events or MaxBytes of payload.
type ReadRequest struct {
	Partition int
	After     int64
	Limit     int
	MaxBytes  int
}

// ReadMany is Read of several requests in two queries whatever their
// number, as long as none has more than a first chunk of events waiting
// (the usual case for projectors that keep up); a request with more is
// cut on its own. It returns each request's events.
func (s *Store) ReadMany(ctx context.Context, reqs []ReadRequest) ([][]Stored, error) {
	return s.readMany(ctx, s.db, reqs)
}

func (s *Store) readMany(ctx context.Context, q Querier, reqs []ReadRequest) ([][]Stored, error) {
	ends, err := s.cutMany(ctx, q, reqs)
	if err != nil {
		return nil, err
	}
	var (
		parts []string
		args  []any
	)
	for i, r := range reqs {
		if ends[i].n > 0 {
			parts = append(parts, "SELECT "+strconv.Itoa(i)+", "+columns+" FROM "+s.table+" WHERE partition_id = ? AND position > ? AND position <= ?")
			args = append(args, r.Partition, r.After, ends[i].last)
		}
	}
	out := make([][]Stored, len(reqs))
	if len(parts) == 0 {
		return out, nil
	}
	for i, e := range ends {
		if e.n > 0 {
			out[i] = make([]Stored, 0, e.n)
		}
	}
	rows, err := q.QueryContext(ctx, union(parts), args...)
	if err != nil {
		return nil, fmt.Errorf("read partitions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		i, st, err := scanStored(rows, reqs)
		if err != nil {
			return nil, err
		}
		out[i] = append(out[i], st)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, batch := range out {
		slices.SortFunc(batch, func(a, b Stored) int { return cmp.Compare(a.Position, b.Position) })
	}
	return out, nil
}

// union joins queries with UNION ALL; each is parenthesized, for its own
// ORDER BY and LIMIT, when there are several.
func union(queries []string) string {
	if len(queries) == 1 {
		return queries[0]
	}
	return "(" + strings.Join(queries, ") UNION ALL (") + ")"
}

// end is where a batch ends: the position of its last event, how many it
// holds and their payload bytes.
type end struct {
	last  int64
	n     int
	total int
}

// cutMany finds where each request's batch ends. Only positions and
// lengths travel here, so a batch of large events is cut before any of
// them is read. MySQL reads a payload whole to measure it, so lengths are
// asked for in chunks that double from firstCut: measuring reads about
// what the batch holds, not limit events' worth, when events are large.
// The first chunk of every request is asked for in one query.
func (s *Store) cutMany(ctx context.Context, q Querier, reqs []ReadRequest) ([]end, error) {
	ends := make([]end, len(reqs))
	parts := make([]string, len(reqs))
	args := make([]any, 0, 3*len(reqs))
	for i, r := range reqs {
		ends[i].last = r.After
		parts[i] = "SELECT " + strconv.Itoa(i) + ", position, LENGTH(payload) FROM " + s.table + " WHERE partition_id = ? AND position > ? ORDER BY position LIMIT ?"
		args = append(args, r.Partition, r.After, min(firstCut, r.Limit))
	}
	rows, err := q.QueryContext(ctx, union(parts), args...)
	if err != nil {
		return nil, fmt.Errorf("read partitions: %w", err)
	}
	lengths := make([][]length, len(reqs))
	for rows.Next() {
		var (
			i int
			l length
		)
		if err := rows.Scan(&i, &l.position, &l.size); err != nil {
			rows.Close()
			return nil, err
		}
		lengths[i] = append(lengths[i], l)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, err
	}
	for i, r := range reqs {
		ls := lengths[i]
		slices.SortFunc(ls, func(a, b length) int { return cmp.Compare(a.position, b.position) })
		ends[i].take(ls, r)
		if len(ls) == min(firstCut, r.Limit) && ends[i].open(r) {
			// More may be waiting: go on alone, in doubling chunks.
			if err := s.cut(ctx, q, r, &ends[i], 2*firstCut); err != nil {
				return nil, err
			}
		}
	}
	return ends, nil
}

type length struct {
	position int64
	size     int
}

// take adds to the batch the events of ls, in position order, while it is
// open.
func (e *end) take(ls []length, r ReadRequest) {
	for _, l := range ls {
		if !e.open(r) {
			return
		}
		e.last, e.total, e.n = l.position, e.total+l.size, e.n+1
	}
}

// open reports whether the batch may take one more event: it is under its
// limit, and empty or under its byte cap.
func (e *end) open(r ReadRequest) bool {
	return e.n < r.Limit && (e.n == 0 || e.total < r.MaxBytes)
}

// cut extends a batch past what it holds, asking for lengths in chunks
// that double from chunk, until it is closed or the log ends.
func (s *Store) cut(ctx context.Context, q Querier, r ReadRequest, e *end, chunk int) error {
	for ; e.open(r); chunk *= 2 {
		ask := min(chunk, r.Limit-e.n)
		rows, err := q.QueryContext(ctx, "SELECT position, LENGTH(payload) FROM "+s.table+" WHERE partition_id = ? AND position > ? ORDER BY position LIMIT ?", r.Partition, e.last, ask)
		if err != nil {
			return fmt.Errorf("read partition %d after %d: %w", r.Partition, r.After, err)
		}
		var ls []length
		for rows.Next() {
			var l length
			if err := rows.Scan(&l.position, &l.size); err != nil {
				rows.Close()
				return err
			}
			ls = append(ls, l)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
		e.take(ls, r)
		if len(ls) < ask {
			return nil // the end of the log
		}
	}
	return nil
}

// firstCut is the first chunk of lengths cut asks for.
const firstCut = 32

// Full reports whether a batch Read returned was cut by limit or maxBytes,
// so that more events may be waiting after it.
func Full(batch []Stored, limit, maxBytes int) bool {
	total := 0
	for _, st := range batch {
		total += len(st.Data)
	}
	return len(batch) >= limit || total >= maxBytes
}

// RecordedAt returns when the event at a partition's position was stored.
func (s *Store) RecordedAt(ctx context.Context, partition int, position int64) (time.Time, error) {
	var at time.Time
	err := s.db.QueryRowContext(ctx, "SELECT recorded_at FROM "+s.table+" WHERE partition_id = ? AND position = ?", partition, position).Scan(&at)
	return at, err
}

// Heads returns the position of every partition's last event, indexed by
// partition.
func (s *Store) Heads(ctx context.Context) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT head FROM "+s.partitions+" ORDER BY partition_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var heads []int64
	for rows.Next() {
		var h int64
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		heads = append(heads, h)
	}
	return heads, rows.Err()
}

// Total returns how many events the log holds: the sum of the partitions'
// heads.
func (s *Store) Total(ctx context.Context) (int64, error) {
	var total int64
	err := s.db.QueryRowContext(ctx, "SELECT COALESCE(SUM(head), 0) FROM "+s.partitions).Scan(&total)
	return total, err
}

// piece is records to store in one partition, after its head.
type piece struct {
	partition int
	head      int64
	recs      []events.Record
}

// insert stores the pieces' records in one statement, each piece's at the
// positions after its head.
func insert(ctx context.Context, tx *sql.Tx, table string, pieces []piece) error {
	var args []any
	for _, p := range pieces {
		for i, r := range p.recs {
			meta, err := plainjson.Marshal(metadata{CorrelationID: r.CorrelationID})
			if err != nil {
				return err
			}
			args = append(args, p.partition, p.head+int64(i)+1, r.EventID[:], r.StreamID, r.StreamVersion, r.Type, r.SchemaVersion, r.Data, meta, r.OccurredAt)
		}
	}
	if len(args) == 0 {
		return nil
	}
	const width = 10
	_, err := tx.ExecContext(ctx, "INSERT INTO "+table+" (partition_id, position, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, occurred_at) VALUES "+
		stmt.Tuples(width, len(args)/width), args...)
	return err
}

// StreamHead is the last version of one stream.
type StreamHead struct {
	StreamID string
	Version  int64
}

// StreamHeads calls fn with the last version of every stream, in stream id
// order. It reads the unique (stream_id, stream_version) index only.
func (s *Store) StreamHeads(ctx context.Context, fn func(StreamHead) error) error {
	rows, err := s.db.QueryContext(ctx, "SELECT stream_id, MAX(stream_version) FROM "+s.table+" GROUP BY stream_id ORDER BY stream_id")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h StreamHead
		if err := rows.Scan(&h.StreamID, &h.Version); err != nil {
			return err
		}
		if err := fn(h); err != nil {
			return err
		}
	}
	return rows.Err()
}
