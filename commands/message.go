package commands

import (
	"context"
	"strconv"
	"time"

	"github.com/chatsys/chat/events"
)

// CreateMessage adds the next message to a chat.
type CreateMessage struct {
	Token      string
	ChatNumber int64
	Body       string
	// IdempotencyKey, when set, makes a retry answer the first attempt's
	// message instead of creating another.
	IdempotencyKey string
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
	o, err := h.apply(ctx, change{
		key:         cmd.IdempotencyKey,
		scope:       cmd.Token,
		fingerprint: fingerprint("CreateMessage", cmd.Token, strconv.FormatInt(cmd.ChatNumber, 10), cmd.Body),
		reserve: func(ctx context.Context) (Outcome, error) {
			number, err := h.numbers.ReserveMessageNumber(ctx, cmd.Token, cmd.ChatNumber)
			if err != nil {
				return Outcome{}, reserved(err, "chat")
			}
			return Outcome{Number: number, Version: 1}, nil
		},
		event: func(o Outcome) events.Event {
			return events.MessageCreated{Token: cmd.Token, ChatNumber: cmd.ChatNumber, Number: o.Number, Body: cmd.Body}
		},
		// A create that was certainly not sent leaves a gap: mark it, so the
		// number is never edited. One that may yet be stored (no confirm in
		// time) is left unmarked, so it can be edited if it lands.
		unsent: func(ctx context.Context, o Outcome) {
			markCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if err := h.numbers.MessageFailed(markCtx, cmd.Token, cmd.ChatNumber, o.Number); err != nil {
				h.log.Warn("could not mark a failed message create", "correlation_id", events.CorrelationID(ctx), "chat_number", cmd.ChatNumber, "number", o.Number, "err", err)
			}
		},
	})
	if err != nil {
		return Message{}, err
	}
	return Message{ChatNumber: cmd.ChatNumber, Number: o.Number, Body: cmd.Body, Timestamps: Timestamps{o.At, o.At}}, nil
}

// EditMessage replaces a message's body.
type EditMessage struct {
	Token          string
	ChatNumber     int64
	Number         int64
	Body           string
	IdempotencyKey string
}

// EditMessage publishes MessageEdited.
func (h *Handlers) EditMessage(ctx context.Context, cmd EditMessage) (Message, error) {
	if err := checkMessage(cmd.Token, cmd.ChatNumber, cmd.Number); err != nil {
		return Message{}, err
	}
	if err := validateBody(cmd.Body); err != nil {
		return Message{}, err
	}
	o, err := h.apply(ctx, change{
		key:         cmd.IdempotencyKey,
		scope:       cmd.Token,
		fingerprint: fingerprint("EditMessage", cmd.Token, strconv.FormatInt(cmd.ChatNumber, 10), strconv.FormatInt(cmd.Number, 10), cmd.Body),
		reserve: func(ctx context.Context) (Outcome, error) {
			version, err := h.numbers.NextMessageVersion(ctx, cmd.Token, cmd.ChatNumber, cmd.Number)
			if err != nil {
				return Outcome{}, reserved(err, "message")
			}
			return Outcome{Version: version}, nil
		},
		event: func(Outcome) events.Event {
			return events.MessageEdited{Token: cmd.Token, ChatNumber: cmd.ChatNumber, Number: cmd.Number, Body: cmd.Body}
		},
	})
	if err != nil {
		return Message{}, err
	}
	return Message{ChatNumber: cmd.ChatNumber, Number: cmd.Number, Body: cmd.Body, Timestamps: Timestamps{UpdatedAt: o.At}}, nil
}

// DeleteMessage deletes a message.
type DeleteMessage struct {
	Token          string
	ChatNumber     int64
	Number         int64
	IdempotencyKey string
}

// Deleted is a delete as the command left it.
type Deleted struct {
	ChatNumber int64
	Number     int64
	DeletedAt  time.Time
}

// DeleteMessage publishes MessageDeleted. Once the broker confirmed it, the
// message is marked deleted, so that later edits and deletes are refused
// with message_deleted; a delete that raced an edit leaves the message
// deleted whatever order the event store keeps them in.
func (h *Handlers) DeleteMessage(ctx context.Context, cmd DeleteMessage) (Deleted, error) {
	if err := checkMessage(cmd.Token, cmd.ChatNumber, cmd.Number); err != nil {
		return Deleted{}, err
	}
	o, err := h.apply(ctx, change{
		key:         cmd.IdempotencyKey,
		scope:       cmd.Token,
		fingerprint: fingerprint("DeleteMessage", cmd.Token, strconv.FormatInt(cmd.ChatNumber, 10), strconv.FormatInt(cmd.Number, 10)),
		reserve: func(ctx context.Context) (Outcome, error) {
			version, err := h.numbers.NextMessageVersion(ctx, cmd.Token, cmd.ChatNumber, cmd.Number)
			if err != nil {
				return Outcome{}, reserved(err, "message")
			}
			return Outcome{Version: version}, nil
		},
		event: func(Outcome) events.Event {
			return events.MessageDeleted{Token: cmd.Token, ChatNumber: cmd.ChatNumber, Number: cmd.Number}
		},
		// The registry projection marks every stored delete too; this is
		// only the fast path, so that a second delete right after this one
		// is refused.
		confirmed: func(ctx context.Context, _ Outcome) {
			h.register(ctx, "message delete", func(ctx context.Context) error {
				return h.numbers.MessageDeleted(ctx, cmd.Token, cmd.ChatNumber, cmd.Number)
			})
		},
	})
	if err != nil {
		return Deleted{}, err
	}
	return Deleted{ChatNumber: cmd.ChatNumber, Number: cmd.Number, DeletedAt: o.At}, nil
}

// checkMessage refuses, as not found, a token or numbers that can name no
// message.
func checkMessage(token string, chat, number int64) error {
	if err := checkToken(token); err != nil {
		return err
	}
	if err := checkNumber(chat, "chat"); err != nil {
		return err
	}
	return checkNumber(number, "message")
}
