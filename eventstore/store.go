// Package eventstore keeps the append-only log of every event in MySQL: the
// single source of truth that projections are folded from. The log is split
// into partitions (an application's events all go to one); each partition
// has one appender at a time (a lease with a fencing epoch) and its own
// positions, assigned by that appender under the partition's row lock, so
// they commit in order and a reader tailing a partition by position never
// skips a row that commits late.
package eventstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/plainjson"
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
}

// New returns the event store of a namespace.
func New(db *sql.DB, namespace string) *Store {
	names := catalog.New(namespace)
	return &Store{db: db, table: names.Events(), partitions: names.Partitions()}
}

const columns = "position, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, occurred_at, recorded_at"

type metadata struct {
	CorrelationID string `json:"correlation_id,omitempty"`
}

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
	last, n, err := s.cut(ctx, q, partition, after, limit, maxBytes)
	if err != nil || n == 0 {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, "SELECT "+columns+" FROM "+s.table+" WHERE partition_id = ? AND position > ? AND position <= ? ORDER BY position", partition, after, last)
	if err != nil {
		return nil, fmt.Errorf("read partition %d after %d: %w", partition, after, err)
	}
	defer rows.Close()
	out := make([]Stored, 0, n)
	for rows.Next() {
		var (
			st   Stored
			id   []byte
			meta []byte
		)
		if err := rows.Scan(&st.Position, &id, &st.StreamID, &st.StreamVersion, &st.Type, &st.SchemaVersion, &st.Data, &meta, &st.OccurredAt, &st.RecordedAt); err != nil {
			return nil, err
		}
		st.Partition = partition
		if st.EventID, err = uuid.FromBytes(id); err != nil {
			return nil, fmt.Errorf("event at %d: %w", st.Position, err)
		}
		var m metadata
		if len(meta) > 0 {
			if err := json.Unmarshal(meta, &m); err != nil {
				return nil, fmt.Errorf("event at %d metadata: %w", st.Position, err)
			}
		}
		st.CorrelationID = m.CorrelationID
		out = append(out, st)
	}
	return out, rows.Err()
}

// cut finds where a batch after position ends: the position of its last
// event and how many it holds. Only positions and lengths travel here, so a
// batch of large events is cut before any of them is read. MySQL reads a
// payload whole to measure it, so lengths are asked for in chunks that
// double from firstCut: measuring reads about what the batch holds, not
// limit events' worth, when events are large.
func (s *Store) cut(ctx context.Context, q Querier, partition int, after int64, limit, maxBytes int) (last int64, n int, err error) {
	last, total := after, 0
	for chunk := firstCut; n < limit && (n == 0 || total < maxBytes); chunk *= 2 {
		ask := min(chunk, limit-n)
		rows, err := q.QueryContext(ctx, "SELECT position, LENGTH(payload) FROM "+s.table+" WHERE partition_id = ? AND position > ? ORDER BY position LIMIT ?", partition, last, ask)
		if err != nil {
			return 0, 0, fmt.Errorf("read partition %d after %d: %w", partition, after, err)
		}
		seen := 0
		for (n == 0 || total < maxBytes) && rows.Next() {
			var size int
			if err := rows.Scan(&last, &size); err != nil {
				rows.Close()
				return 0, 0, err
			}
			total += size
			n++
			seen++
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return 0, 0, err
		}
		if seen < ask {
			break // the end of the log, or of the batch
		}
	}
	return last, n, nil
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

// Head returns the position of a partition's last event, 0 when it is empty.
func (s *Store) Head(ctx context.Context, partition int) (int64, error) {
	var head sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT MAX(position) FROM "+s.table+" WHERE partition_id = ?", partition).Scan(&head)
	return head.Int64, err
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
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (partition_id, position, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, occurred_at) VALUES ")
	var args []any
	for _, p := range pieces {
		for i, r := range p.recs {
			if len(args) > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?,?,?,?)")
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
	_, err := tx.ExecContext(ctx, b.String(), args...)
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
