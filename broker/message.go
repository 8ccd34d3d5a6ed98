package broker

import (
	"fmt"
	"strconv"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/events"
)

// ToMessage maps a record onto a Watermill message: the event id is the
// message UUID, envelope facts travel as metadata, the payload as the body.
func ToMessage(r events.Record) *message.Message {
	msg := message.NewMessage(r.EventID.String(), r.Data)
	msg.Metadata.Set(keyType, r.Type)
	msg.Metadata.Set(keySchemaVersion, strconv.Itoa(r.SchemaVersion))
	msg.Metadata.Set(keyStreamID, r.StreamID)
	msg.Metadata.Set(keyStreamVersion, strconv.FormatInt(r.StreamVersion, 10))
	msg.Metadata.Set(keyOccurredAt, r.OccurredAt.UTC().Format(time.RFC3339Nano))
	if r.CorrelationID != "" {
		msg.Metadata.Set(keyCorrelationID, r.CorrelationID)
	}
	return msg
}

// FromMessage reads a record back from a Watermill message. Errors wrap
// events.ErrUndecodable: a message that fails here never will succeed.
func FromMessage(msg *message.Message) (events.Record, error) {
	bad := func(format string, args ...any) (events.Record, error) {
		return events.Record{}, fmt.Errorf("%w: %s", events.ErrUndecodable, fmt.Sprintf(format, args...))
	}
	id, err := uuid.Parse(msg.UUID)
	if err != nil {
		return bad("message id %q is not a UUID", msg.UUID)
	}
	sv, err := strconv.Atoi(msg.Metadata.Get(keySchemaVersion))
	if err != nil {
		return bad("schema_version %q", msg.Metadata.Get(keySchemaVersion))
	}
	ver, err := strconv.ParseInt(msg.Metadata.Get(keyStreamVersion), 10, 64)
	if err != nil {
		return bad("stream_version %q", msg.Metadata.Get(keyStreamVersion))
	}
	at, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(keyOccurredAt))
	if err != nil {
		return bad("occurred_at %q", msg.Metadata.Get(keyOccurredAt))
	}
	r := events.Record{
		EventID:       id,
		Type:          msg.Metadata.Get(keyType),
		SchemaVersion: sv,
		StreamID:      msg.Metadata.Get(keyStreamID),
		StreamVersion: ver,
		OccurredAt:    at.UTC(),
		CorrelationID: msg.Metadata.Get(keyCorrelationID),
		Data:          msg.Payload,
	}
	if r.Type == "" || r.StreamID == "" {
		return bad("event_type or stream_id missing")
	}
	return r, nil
}

// marshaler is Watermill's default mapping made total: a header that is not
// a string (from a foreign publisher) is rendered as text instead of failing,
// because a failed unmarshal is nacked and redelivered forever, before any
// handler could park it.
type marshaler struct{}

func (marshaler) Marshal(msg *message.Message) (amqp.Publishing, error) {
	p, err := wamqp.DefaultMarshaler{}.Marshal(msg)
	if err != nil {
		return p, err
	}
	p.ContentType = "application/json"
	p.MessageId = msg.UUID
	return p, nil
}

func (marshaler) Unmarshal(d amqp.Delivery) (*message.Message, error) {
	id, _ := d.Headers[wamqp.DefaultMessageUUIDHeaderKey].(string)
	if id == "" {
		id = d.MessageId
	}
	msg := message.NewMessage(id, d.Body)
	for k, v := range d.Headers {
		if k == wamqp.DefaultMessageUUIDHeaderKey {
			continue
		}
		if s, ok := v.(string); ok {
			msg.Metadata.Set(k, s)
		} else {
			msg.Metadata.Set(k, fmt.Sprint(v))
		}
	}
	return msg, nil
}
