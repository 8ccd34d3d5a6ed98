// Package events defines the domain events, their envelope and the codec that
// turns them into records for the wire and the event store.
package events

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Type names are part of the wire and storage contract: never rename one.
const (
	TypeApplicationCreated = "ApplicationCreated"
	TypeApplicationRenamed = "ApplicationRenamed"
	TypeChatCreated        = "ChatCreated"
	TypeChatRenamed        = "ChatRenamed"
	TypeMessageCreated     = "MessageCreated"
	TypeMessageEdited      = "MessageEdited"
	TypeMessageDeleted     = "MessageDeleted"
)

// Event is the payload of one domain event.
type Event interface {
	// EventType is the stable name of the event on the wire.
	EventType() string
	// StreamID names the aggregate the event belongs to.
	StreamID() string
}

// ApplicationCreated opens an application stream (version 1).
type ApplicationCreated struct {
	Token string `json:"token"`
	Name  string `json:"name"`
}

// ApplicationRenamed changes an application's name.
type ApplicationRenamed struct {
	Token string `json:"token"`
	Name  string `json:"name"`
}

// ChatCreated opens a chat stream (version 1).
type ChatCreated struct {
	Token  string `json:"token"`
	Number int64  `json:"number"`
	Name   string `json:"name"`
}

// ChatRenamed changes a chat's name.
type ChatRenamed struct {
	Token  string `json:"token"`
	Number int64  `json:"number"`
	Name   string `json:"name"`
}

// MessageCreated opens a message stream (version 1).
type MessageCreated struct {
	Token      string `json:"token"`
	ChatNumber int64  `json:"chat_number"`
	Number     int64  `json:"number"`
	Body       string `json:"body"`
	// Erased marks a create whose message was deleted: the event store
	// erased its body (Erase).
	Erased bool `json:"erased,omitempty"`
}

// MessageEdited replaces a message's body.
type MessageEdited struct {
	Token      string `json:"token"`
	ChatNumber int64  `json:"chat_number"`
	Number     int64  `json:"number"`
	Body       string `json:"body"`
	Erased     bool   `json:"erased,omitempty"`
}

// MessageDeleted deletes a message. Its stream's other events are erased
// where they are stored: a deletion takes the words away, not only the
// message out of sight.
type MessageDeleted struct {
	Token      string `json:"token"`
	ChatNumber int64  `json:"chat_number"`
	Number     int64  `json:"number"`
}

func (ApplicationCreated) EventType() string { return TypeApplicationCreated }
func (ApplicationRenamed) EventType() string { return TypeApplicationRenamed }
func (ChatCreated) EventType() string        { return TypeChatCreated }
func (ChatRenamed) EventType() string        { return TypeChatRenamed }
func (MessageCreated) EventType() string     { return TypeMessageCreated }
func (MessageEdited) EventType() string      { return TypeMessageEdited }
func (MessageDeleted) EventType() string     { return TypeMessageDeleted }

func (e ApplicationCreated) StreamID() string { return ApplicationStream(e.Token) }
func (e ApplicationRenamed) StreamID() string { return ApplicationStream(e.Token) }
func (e ChatCreated) StreamID() string        { return ChatStream(e.Token, e.Number) }
func (e ChatRenamed) StreamID() string        { return ChatStream(e.Token, e.Number) }
func (e MessageCreated) StreamID() string     { return MessageStream(e.Token, e.ChatNumber, e.Number) }
func (e MessageEdited) StreamID() string      { return MessageStream(e.Token, e.ChatNumber, e.Number) }
func (e MessageDeleted) StreamID() string     { return MessageStream(e.Token, e.ChatNumber, e.Number) }

// ApplicationStream is the stream id of an application.
func ApplicationStream(token string) string { return "app:" + token }

// ChatStream is the stream id of a chat.
func ChatStream(token string, number int64) string {
	return "chat:" + token + ":" + strconv.FormatInt(number, 10)
}

// MessageStream is the stream id of a message.
func MessageStream(token string, chat, number int64) string {
	return "msg:" + token + ":" + strconv.FormatInt(chat, 10) + ":" + strconv.FormatInt(number, 10)
}

// Envelope is one event with the facts about it.
type Envelope struct {
	EventID       uuid.UUID
	StreamVersion int64
	OccurredAt    time.Time
	CorrelationID string
	Event         Event
}

// New wraps ev in an envelope with a fresh UUID v7 and the current time,
// truncated to what MySQL keeps (microseconds) so that a value echoed to the
// client reads back identically.
func New(ev Event, streamVersion int64, correlationID string) (Envelope, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{
		EventID:       id,
		StreamVersion: streamVersion,
		OccurredAt:    Now(),
		CorrelationID: correlationID,
		Event:         ev,
	}, nil
}

// Now is the current UTC time at microsecond precision.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Stream is a parsed stream id: an application (Chat and Number zero), a chat
// (Number zero) or a message.
type Stream struct {
	Kind   string // "app", "chat" or "msg"
	Token  string
	Chat   int64
	Number int64
}

// TokenOf returns the application token a stream id names ("" when it
// names none): the events of one application share it.
func TokenOf(streamID string) string {
	_, rest, ok := strings.Cut(streamID, ":")
	if !ok {
		return ""
	}
	token, _, _ := strings.Cut(rest, ":")
	return token
}

// ParseStream parses a stream id made by ApplicationStream, ChatStream or
// MessageStream.
func ParseStream(id string) (Stream, bool) {
	parts := strings.Split(id, ":")
	num := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && n > 0
	}
	switch {
	case len(parts) == 2 && parts[0] == "app":
		return Stream{Kind: "app", Token: parts[1]}, true
	case len(parts) == 3 && parts[0] == "chat":
		c, ok := num(parts[2])
		return Stream{Kind: "chat", Token: parts[1], Chat: c}, ok
	case len(parts) == 4 && parts[0] == "msg":
		c, ok1 := num(parts[2])
		n, ok2 := num(parts[3])
		return Stream{Kind: "msg", Token: parts[1], Chat: c, Number: n}, ok1 && ok2
	}
	return Stream{}, false
}
