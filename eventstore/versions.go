package eventstore

import (
	"context"
	"database/sql"
	"slices"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/mysqldb/stmt"
)

// StreamVersion is a stored event of a stream without its payload: which
// version of the stream it is, and its type.
type StreamVersion struct {
	StreamID string
	Version  int64
	Type     string
}

// Versions calls fn with the events of the streams named that partition
// holds before position before, in no particular order. It looks the
// streams up by the unique (stream_id, stream_version) index, a thousand
// streams a query, and reads no payload: a projector asks what earlier
// batches held of the streams of its batch, most of which are new.
func (s *Store) Versions(ctx context.Context, partition int, before int64, streamIDs []string, fn func(StreamVersion) error) error {
	for ids := range slices.Chunk(streamIDs, 1000) {
		args := append(stmt.Args(ids), partition, before)
		rows, err := s.db.QueryContext(ctx, "SELECT stream_id, stream_version, event_type FROM "+s.table+
			" WHERE stream_id IN ("+stmt.Placeholders(len(ids))+") AND partition_id = ? AND position < ?", args...)
		if err != nil {
			return err
		}
		if err := scanVersions(rows, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanVersions calls fn with each of the rows and closes them.
func scanVersions(rows *sql.Rows, fn func(StreamVersion) error) error {
	defer rows.Close()
	for rows.Next() {
		var (
			v   StreamVersion
			typ sql.RawBytes
		)
		if err := rows.Scan(&v.StreamID, &v.Version, &typ); err != nil {
			return err
		}
		v.Type = typeName(typ)
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	return rows.Err()
}

// Version returns the event stored at a stream's version: where it is
// (its partition and position) and what a fold reads of it (its type,
// schema version and payload), not its metadata. The error is
// sql.ErrNoRows when the log holds no such version.
func (s *Store) Version(ctx context.Context, streamID string, version int64) (Stored, error) {
	st := Stored{Record: events.Record{StreamID: streamID, StreamVersion: version}}
	err := s.db.QueryRowContext(ctx, "SELECT partition_id, position, event_type, schema_version, payload FROM "+s.table+" WHERE stream_id = ? AND stream_version = ?",
		streamID, version).Scan(&st.Partition, &st.Position, &st.Type, &st.SchemaVersion, &st.Data)
	return st, err
}
