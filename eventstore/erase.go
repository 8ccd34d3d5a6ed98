package eventstore

import (
	"bytes"
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/mysqldb/stmt"
)

// A deleted message is erased from the log: the body of every event of its
// stream is taken out (events.Erase), in the transaction that stores the
// delete. An event of that stream stored later (an edit or a create that
// raced the delete, delivered after it) is erased in the transaction that
// stores it. The erasures table names the deleted streams, so that an
// append learns by primary key whether what it stores must be erased.

// erase records the pieces' deletes and erases what they call for: the
// stored events of the streams they delete, and the pieces' own events of
// every deleted stream. The pieces' records are erased too, so that what
// the append returns is what a read of the log would.
func (s *Store) erase(ctx context.Context, tx *sql.Tx, pieces []piece) error {
	doomed := map[string]bool{}
	var deletes, parts, others []any
	for _, p := range pieces {
		has := false
		for i, r := range p.recs {
			switch {
			case r.Type == events.TypeMessageDeleted:
				deletes = append(deletes, p.partition, r.StreamID, p.head+1+int64(i))
				doomed[r.StreamID], has = true, true
			case events.Erasable(r.Type):
				others, has = append(others, r.StreamID), true
			}
		}
		if has {
			parts = append(parts, p.partition)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	if len(deletes) > 0 {
		// A second delete of a stream (two raced) keeps the first's row.
		if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO "+s.erasures+" (partition_id, stream_id, position) VALUES "+
			stmt.Tuples(3, len(deletes)/3), deletes...); err != nil {
			return err
		}
	}
	if len(others) > 0 {
		if err := s.deletedAmong(ctx, tx, parts, others, doomed); err != nil {
			return err
		}
	}
	if len(doomed) == 0 {
		return nil
	}
	if err := s.eraseStored(ctx, tx, parts, doomed); err != nil {
		return err
	}
	for _, p := range pieces {
		for i, r := range p.recs {
			if doomed[r.StreamID] && events.Erasable(r.Type) {
				erased, err := events.EraseRecord(r)
				if err != nil {
					return err
				}
				p.recs[i] = erased
			}
		}
	}
	return nil
}

// deletedAmong adds to doomed the streams that the erasures table names.
func (s *Store) deletedAmong(ctx context.Context, tx *sql.Tx, parts, streams []any, doomed map[string]bool) error {
	return streamIDs(ctx, tx, "SELECT stream_id FROM "+s.erasures+" WHERE partition_id IN ("+stmt.Placeholders(len(parts))+
		") AND stream_id IN ("+stmt.Placeholders(len(streams))+")", append(append([]any{}, parts...), streams...), func(id string) error {
		doomed[id] = true
		return nil
	})
}

// streamIDs calls fn with each stream id a query of one column returns.
func streamIDs(ctx context.Context, q Querier, query string, args []any, fn func(string) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		if err := fn(id); err != nil {
			return err
		}
	}
	return rows.Err()
}

// eraseStored erases the stored events of the doomed streams that still
// carry words (those inserted by this transaction among them).
func (s *Store) eraseStored(ctx context.Context, tx *sql.Tx, parts []any, doomed map[string]bool) error {
	args := append([]any{}, parts...)
	for id := range doomed {
		args = append(args, id)
	}
	args = append(args, events.TypeMessageCreated, events.TypeMessageEdited)
	rows, err := tx.QueryContext(ctx, "SELECT partition_id, position, event_type, payload FROM "+s.table+" WHERE partition_id IN ("+stmt.Placeholders(len(parts))+
		") AND stream_id IN ("+stmt.Placeholders(len(doomed))+") AND event_type IN (?,?)", args...)
	if err != nil {
		return err
	}
	type change struct {
		partition int
		position  int64
		payload   []byte
	}
	var changes []change
	for rows.Next() {
		var (
			c change
			r events.Record
		)
		if err := rows.Scan(&c.partition, &c.position, &r.Type, &r.Data); err != nil {
			rows.Close()
			return err
		}
		erased, err := events.EraseRecord(r)
		if err != nil {
			rows.Close()
			return err
		}
		if !bytes.Equal(erased.Data, r.Data) {
			changes = append(changes, change{c.partition, c.position, erased.Data})
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range changes {
		if _, err := tx.ExecContext(ctx, "UPDATE "+s.table+" SET payload = ? WHERE partition_id = ? AND position = ?", c.payload, c.partition, c.position); err != nil {
			return err
		}
	}
	return nil
}

// DeletedStreams calls fn with every deleted stream, in stream id order
// within each partition.
func (s *Store) DeletedStreams(ctx context.Context, fn func(streamID string) error) error {
	return streamIDs(ctx, s.db, "SELECT stream_id FROM "+s.erasures+" ORDER BY partition_id, stream_id", nil, fn)
}

// Deleted returns which of the streams are deleted.
func (s *Store) Deleted(ctx context.Context, streams []string) (map[string]bool, error) {
	out := map[string]bool{}
	for chunk := range slices.Chunk(streams, 1000) {
		err := streamIDs(ctx, s.db, "SELECT stream_id FROM "+s.erasures+" WHERE stream_id IN ("+stmt.Placeholders(len(chunk))+")", stmt.Args(chunk), func(id string) error {
			out[id] = true
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LastErasure is when the latest delete was stored (zero for none).
func (s *Store) LastErasure(ctx context.Context) (time.Time, error) {
	var at sql.NullTime
	err := s.db.QueryRowContext(ctx, "SELECT MAX(erased_at) FROM "+s.erasures).Scan(&at)
	return at.Time, err
}
