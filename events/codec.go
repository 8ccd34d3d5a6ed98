package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/internal/plainjson"
)

// ErrUndecodable marks a record that no code version can turn into an event:
// unknown type, unsupported schema version or a malformed payload. Such a
// record is parked, never retried.
var ErrUndecodable = errors.New("undecodable event")

// Record is the neutral form of an event, as carried by the broker and kept
// by the event store: envelope facts plus the JSON payload.
type Record struct {
	EventID       uuid.UUID
	Type          string
	SchemaVersion int
	StreamID      string
	StreamVersion int64
	OccurredAt    time.Time
	CorrelationID string
	Data          []byte
}

type registration struct {
	version int
	decode  func(data []byte) (Event, error)
}

// Codec converts envelopes to records and back through an explicit registry
// of event types and the schema version each is written with.
type Codec struct {
	types map[string]registration
}

// register adds a type; fast, if not nil, reads the payloads the codec
// writes without the JSON decoder (fast.go), and says false for any other.
func register[E Event](c *Codec, version int, fast func([]byte) (E, bool)) {
	var zero E
	c.types[zero.EventType()] = registration{version: version, decode: func(data []byte) (Event, error) {
		if fast != nil {
			if e, ok := fast(data); ok {
				return e, nil
			}
		}
		var e E
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, err
		}
		return e, nil
	}}
}

// NewCodec returns a codec that knows every event type of the system.
func NewCodec() *Codec {
	c := &Codec{types: map[string]registration{}}
	register(c, 1, func(d []byte) (ApplicationCreated, bool) {
		token, name, ok := fastApplication(d)
		return ApplicationCreated{Token: token, Name: name}, ok
	})
	register(c, 1, func(d []byte) (ApplicationRenamed, bool) {
		token, name, ok := fastApplication(d)
		return ApplicationRenamed{Token: token, Name: name}, ok
	})
	register(c, 1, func(d []byte) (ChatCreated, bool) {
		token, number, name, ok := fastChat(d)
		return ChatCreated{Token: token, Number: number, Name: name}, ok
	})
	register(c, 1, func(d []byte) (ChatRenamed, bool) {
		token, number, name, ok := fastChat(d)
		return ChatRenamed{Token: token, Number: number, Name: name}, ok
	})
	register(c, 1, func(d []byte) (MessageCreated, bool) {
		token, chat, number, body, ok := fastMessage(d)
		return MessageCreated{Token: token, ChatNumber: chat, Number: number, Body: body}, ok
	})
	register(c, 1, func(d []byte) (MessageEdited, bool) {
		token, chat, number, body, ok := fastMessage(d)
		return MessageEdited{Token: token, ChatNumber: chat, Number: number, Body: body}, ok
	})
	register(c, 1, func(d []byte) (MessageDeleted, bool) {
		s := scanner{data: d}
		var e MessageDeleted
		ok := s.text("token", &e.Token) && s.number("chat_number", &e.ChatNumber) && s.number("number", &e.Number) && s.end()
		return e, ok
	})
	register[ApplicationLimitsSet](c, 1, nil)
	return c
}

// Examples returns a zero value of every registered event type, in type
// name order: tests walk it to prove that every fold handles every type.
func (c *Codec) Examples() []Event {
	names := make([]string, 0, len(c.types))
	for name := range c.types {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]Event, 0, len(names))
	for _, name := range names {
		ev, err := c.types[name].decode([]byte("{}"))
		if err != nil {
			panic(fmt.Sprintf("events: %s does not decode from {}: %v", name, err))
		}
		out = append(out, ev)
	}
	return out
}

// Encode turns an envelope into a record.
func (c *Codec) Encode(env Envelope) (Record, error) {
	reg, ok := c.types[env.Event.EventType()]
	if !ok {
		return Record{}, fmt.Errorf("encode %s: type not registered", env.Event.EventType())
	}
	data, err := plainjson.Marshal(env.Event)
	if err != nil {
		return Record{}, fmt.Errorf("encode %s: %w", env.Event.EventType(), err)
	}
	return Record{
		EventID:       env.EventID,
		Type:          env.Event.EventType(),
		SchemaVersion: reg.version,
		StreamID:      env.Event.StreamID(),
		StreamVersion: env.StreamVersion,
		OccurredAt:    env.OccurredAt,
		CorrelationID: env.CorrelationID,
		Data:          data,
	}, nil
}

// Decode turns a record into an envelope. Errors wrap ErrUndecodable.
func (c *Codec) Decode(r Record) (Envelope, error) {
	reg, ok := c.types[r.Type]
	if !ok {
		return Envelope{}, fmt.Errorf("%w: unknown type %q", ErrUndecodable, r.Type)
	}
	if r.SchemaVersion != reg.version {
		return Envelope{}, fmt.Errorf("%w: %s schema version %d, this build reads %d", ErrUndecodable, r.Type, r.SchemaVersion, reg.version)
	}
	ev, err := reg.decode(r.Data)
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: %s payload: %v", ErrUndecodable, r.Type, err)
	}
	if ev.StreamID() != r.StreamID {
		return Envelope{}, fmt.Errorf("%w: %s payload belongs to stream %q, envelope says %q", ErrUndecodable, r.Type, ev.StreamID(), r.StreamID)
	}
	if r.StreamVersion < 1 {
		return Envelope{}, fmt.Errorf("%w: %s stream version %d", ErrUndecodable, r.Type, r.StreamVersion)
	}
	return Envelope{
		EventID:       r.EventID,
		StreamVersion: r.StreamVersion,
		OccurredAt:    r.OccurredAt,
		CorrelationID: r.CorrelationID,
		Event:         ev,
	}, nil
}
