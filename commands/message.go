package commands

import (
	"context"
	"errors"
	"time"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/events"
)

// CreateMessage adds the next message to a chat.
type CreateMessage struct {
	Token      string
	ChatNumber int64
	Body       string
}

// Message is a message as a command left it.
type Message struct {
	ChatNumber int64
	Number     int64
	Body       string
	Timestamps
}

// CreateMessage reserves the next message number and publishes MessageCreated.
func (h *Handlers) CreateMessage(ctx context.Context, cmd CreateMessage) (Message, error) {
	if err := checkToken(cmd.Token); err != nil {
		return Message{}, err
	}
	if err := checkNumber(cmd.ChatNumber, "chat"); err != nil {
		return Message{}, err
	}
	if err := validateBody(cmd.Body); err != nil {
		return Message{}, err
	}
	if err := h.ready(); err != nil {
		return Message{}, err
	}
	number, err := h.numbers.ReserveMessageNumber(ctx, cmd.Token, cmd.ChatNumber)
	if err != nil {
		return Message{}, reserved(err, "chat")
	}
	env, err := h.emit(ctx, events.MessageCreated{Token: cmd.Token, ChatNumber: cmd.ChatNumber, Number: number, Body: cmd.Body}, 1)
	if err != nil {
		// A create that was certainly not sent leaves a gap: mark it, so the
		// number is never edited. One that may yet be stored (no confirm in
		// time) is left unmarked, so it can be edited if it lands.
		if errors.Is(err, broker.ErrNotSent) {
			markCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if markErr := h.numbers.MessageFailed(markCtx, cmd.Token, cmd.ChatNumber, number); markErr != nil {
				h.log.Warn("could not mark a failed message create", "correlation_id", events.CorrelationID(ctx), "chat_number", cmd.ChatNumber, "number", number, "err", markErr)
			}
		}
		return Message{}, err
	}
	return Message{ChatNumber: cmd.ChatNumber, Number: number, Body: cmd.Body, Timestamps: Timestamps{env.OccurredAt, env.OccurredAt}}, nil
}

// EditMessage replaces a message's body.
type EditMessage struct {
	Token      string
	ChatNumber int64
	Number     int64
	Body       string
}

// EditMessage publishes MessageEdited.
func (h *Handlers) EditMessage(ctx context.Context, cmd EditMessage) (Message, error) {
	if err := checkToken(cmd.Token); err != nil {
		return Message{}, err
	}
	if err := checkNumber(cmd.ChatNumber, "chat"); err != nil {
		return Message{}, err
	}
	if err := checkNumber(cmd.Number, "message"); err != nil {
		return Message{}, err
	}
	if err := validateBody(cmd.Body); err != nil {
		return Message{}, err
	}
	if err := h.ready(); err != nil {
		return Message{}, err
	}
	version, err := h.numbers.NextMessageVersion(ctx, cmd.Token, cmd.ChatNumber, cmd.Number)
	if err != nil {
		return Message{}, reserved(err, "message")
	}
	env, err := h.emit(ctx, events.MessageEdited{Token: cmd.Token, ChatNumber: cmd.ChatNumber, Number: cmd.Number, Body: cmd.Body}, version)
	if err != nil {
		return Message{}, err
	}
	return Message{ChatNumber: cmd.ChatNumber, Number: cmd.Number, Body: cmd.Body, Timestamps: Timestamps{UpdatedAt: env.OccurredAt}}, nil
}
