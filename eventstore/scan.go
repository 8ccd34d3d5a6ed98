package eventstore

import (
	"context"
	"slices"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/mysqldb/stmt"
)

// streamsPerQuery is the most stream ids one query names.
const streamsPerQuery = 500

// CreatedStreams calls fn with each stream of ids whose first event (stream
// version 1) a partition holds at or before position upTo, in no particular
// order. It reads through q, so that a reader inside a snapshot sees the log
// as of it, and through the unique (stream_id, stream_version) index, a few
// hundred streams a query.
func (s *Store) CreatedStreams(ctx context.Context, q Querier, partition int, upTo int64, ids []string, fn func(streamID string) error) error {
	for chunk := range slices.Chunk(ids, streamsPerQuery) {
		args := append([]any{partition, upTo}, stmt.Args(chunk)...)
		query := "SELECT stream_id FROM " + s.table + " WHERE partition_id = ? AND position <= ? AND stream_version = 1 AND stream_id IN (" + stmt.Placeholders(len(chunk)) + ")"
		if err := streamIDs(ctx, q, query, args, fn); err != nil {
			return err
		}
	}
	return nil
}

// LastPosition returns the highest position of any event in a namespace's
// log, read from the log itself rather than the partitions' heads: a log
// written before partitions existed has events but no heads yet. It is 0
// for an empty log.
func LastPosition(ctx context.Context, q Querier, namespace string) (int64, error) {
	rows, err := q.QueryContext(ctx, "SELECT COALESCE(MAX(position), 0) FROM "+catalog.New(namespace).Events())
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var last int64
	if rows.Next() {
		if err := rows.Scan(&last); err != nil {
			return 0, err
		}
	}
	return last, rows.Err()
}
