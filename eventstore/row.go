package eventstore

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/chatsys/chat/events"
)

type metadata struct {
	CorrelationID string `json:"correlation_id,omitempty"`
}

// scanStored reads a row of readMany's query: the index of its request and
// the event. Replay and verify read millions of rows, so the columns that
// need no copy of their own are read in place.
func scanStored(rows *sql.Rows, reqs []ReadRequest) (int, Stored, error) {
	var (
		i             int
		st            Stored
		id, typ, meta sql.RawBytes
	)
	if err := rows.Scan(&i, &st.Position, &id, &st.StreamID, &st.StreamVersion, &typ, &st.SchemaVersion, &st.Data, &meta, &st.OccurredAt, &st.RecordedAt); err != nil {
		return 0, Stored{}, err
	}
	st.Partition = reqs[i].Partition
	var err error
	if st.EventID, err = uuid.FromBytes(id); err != nil {
		return 0, Stored{}, fmt.Errorf("event at %d:%d: %w", st.Partition, st.Position, err)
	}
	st.Type = typeName(typ)
	if st.CorrelationID, err = correlationID(meta); err != nil {
		return 0, Stored{}, fmt.Errorf("event at %d:%d metadata: %w", st.Partition, st.Position, err)
	}
	return i, st, nil
}

// typeName returns the event type b names, sharing the string of a known
// type instead of making one per event.
func typeName(b []byte) string {
	switch string(b) {
	case events.TypeApplicationCreated:
		return events.TypeApplicationCreated
	case events.TypeApplicationRenamed:
		return events.TypeApplicationRenamed
	case events.TypeChatCreated:
		return events.TypeChatCreated
	case events.TypeChatRenamed:
		return events.TypeChatRenamed
	case events.TypeMessageCreated:
		return events.TypeMessageCreated
	case events.TypeMessageEdited:
		return events.TypeMessageEdited
	case events.TypeMessageDeleted:
		return events.TypeMessageDeleted
	}
	return string(b)
}

// correlationID reads the metadata column. The shape the appender writes,
// with an id of printable ASCII and no escapes, is read directly; anything
// else goes through the JSON decoder.
func correlationID(meta []byte) (string, error) {
	if len(meta) == 0 {
		return "", nil
	}
	if v, ok := bytes.CutPrefix(meta, []byte(`{"correlation_id":"`)); ok {
		if v, ok := bytes.CutSuffix(v, []byte(`"}`)); ok && plain(v) {
			return string(v), nil
		}
	}
	var m metadata
	if err := json.Unmarshal(meta, &m); err != nil {
		return "", err
	}
	return m.CorrelationID, nil
}

// plain reports whether b is printable ASCII without a quote or a
// backslash: a JSON string's content that means itself.
func plain(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
