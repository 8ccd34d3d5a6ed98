package eventstore

import (
	"context"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/mysqldb/stmt"
)

// StreamEvents calls fn with the events of eventType in the streams named,
// in stream and version order. It reads through the unique (stream_id,
// stream_version) index, a few hundred streams a query.
func (s *Store) StreamEvents(ctx context.Context, streamIDs []string, eventType string, fn func(events.Record) error) error {
	const chunk = 500
	for len(streamIDs) > 0 {
		ids := streamIDs[:min(chunk, len(streamIDs))]
		streamIDs = streamIDs[len(ids):]
		args := append(stmt.Args(ids), eventType)
		q := "SELECT stream_id, stream_version, event_type, schema_version, payload FROM " + s.table +
			" WHERE stream_id IN (" + stmt.Placeholders(len(ids)) + ") AND event_type = ? ORDER BY stream_id, stream_version"
		if err := s.scanRecords(ctx, q, args, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) scanRecords(ctx context.Context, q string, args []any, fn func(events.Record) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r events.Record
		if err := rows.Scan(&r.StreamID, &r.StreamVersion, &r.Type, &r.SchemaVersion, &r.Data); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}
