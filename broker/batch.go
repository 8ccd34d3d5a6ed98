package broker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/events"
)

// A batch message carries the records of one partition that were published
// together: one JSON object per line, each a whole envelope with the event's
// payload inside. One broker message (one confirm, one delivery, one ack)
// then stands for many events, which is most of what a publish costs the
// broker. Lines are independent, so a line that cannot be read is parked
// alone, not with its neighbours.
const keyEventCount = "event_count"

// wireRecord is a record on one line of a batch message.
type wireRecord struct {
	EventID       uuid.UUID       `json:"event_id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	StreamID      string          `json:"stream_id"`
	StreamVersion int64           `json:"stream_version"`
	OccurredAt    time.Time       `json:"occurred_at"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	Data          json.RawMessage `json:"data"`
}

// BatchMessage maps records onto one Watermill message.
func BatchMessage(recs []events.Record) (*message.Message, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, r := range recs {
		if err := enc.Encode(wireRecord{r.EventID, r.Type, r.SchemaVersion, r.StreamID, r.StreamVersion, r.OccurredAt.UTC(), r.CorrelationID, r.Data}); err != nil {
			return nil, fmt.Errorf("encode event %s: %w", r.EventID, err)
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(id.String(), buf.Bytes())
	msg.Metadata.Set(keyEventCount, strconv.Itoa(len(recs)))
	return msg, nil
}

// Line is one record of a broker message as read back: the record, or why
// it cannot be read (wrapping events.ErrUndecodable) with its raw bytes.
type Line struct {
	Record events.Record
	Err    error
	Raw    []byte
}

// Records reads the records of a broker message: every line of a batch
// message, or the one record of a message of a single event (as releases
// before batches published).
func Records(msg *message.Message) []Line {
	if msg.Metadata.Get(keyEventCount) == "" {
		r, err := FromMessage(msg)
		return []Line{{Record: r, Err: err, Raw: msg.Payload}}
	}
	var out []Line
	for rest := msg.Payload; len(rest) > 0; {
		line, tail, _ := bytes.Cut(rest, []byte{'\n'})
		rest = tail
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r, err := decodeLine(line)
		out = append(out, Line{Record: r, Err: err, Raw: line})
	}
	return out
}

func decodeLine(line []byte) (events.Record, error) {
	var w wireRecord
	if err := json.Unmarshal(line, &w); err != nil {
		return events.Record{}, fmt.Errorf("%w: batch line: %v", events.ErrUndecodable, err)
	}
	if w.Type == "" || w.StreamID == "" || w.EventID == uuid.Nil || len(w.Data) == 0 {
		return events.Record{}, fmt.Errorf("%w: batch line: event_id, type, stream_id or data missing", events.ErrUndecodable)
	}
	return events.Record{
		EventID:       w.EventID,
		Type:          w.Type,
		SchemaVersion: w.SchemaVersion,
		StreamID:      w.StreamID,
		StreamVersion: w.StreamVersion,
		OccurredAt:    w.OccurredAt.UTC(),
		CorrelationID: w.CorrelationID,
		Data:          w.Data,
	}, nil
}

// DeliveryRecords reads the records of a delivery as Records does those of
// a Watermill message, and returns the message's id with them.
func DeliveryRecords(d amqp.Delivery) (id string, lines []Line) {
	msg, _ := marshaler{}.Unmarshal(d) // it never fails
	return msg.UUID, Records(msg)
}
