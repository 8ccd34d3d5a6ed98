package commands

import (
	"context"
	"strconv"

	"github.com/chatsys/chat/events"
)

// CreateChat creates the next chat of an application. Name may be empty.
type CreateChat struct {
	Token string
	Name  string
	// HasName is false when the client sent no name; a name sent must be valid.
	HasName bool
	// IdempotencyKey, when set, makes a retry answer the first attempt's
	// chat instead of creating another.
	IdempotencyKey string
}

// Chat is a chat as a command left it.
type Chat struct {
	Number int64
	Name   string
	Timestamps
}

// CreateChat reserves the next chat number and publishes ChatCreated.
func (h *Handlers) CreateChat(ctx context.Context, cmd CreateChat) (Chat, error) {
	if err := checkToken(cmd.Token); err != nil {
		return Chat{}, err
	}
	if cmd.HasName {
		if err := validateName(cmd.Name); err != nil {
			return Chat{}, err
		}
	}
	o, err := h.apply(ctx, change{
		key:         cmd.IdempotencyKey,
		scope:       cmd.Token,
		fingerprint: fingerprint("CreateChat", cmd.Token, cmd.Name, strconv.FormatBool(cmd.HasName)),
		reserve: func(ctx context.Context) (Outcome, error) {
			number, err := h.numbers.ReserveChatNumber(ctx, cmd.Token)
			if err != nil {
				return Outcome{}, reserved(err, "application")
			}
			return Outcome{Number: number, Version: 1}, nil
		},
		event: func(o Outcome) events.Event {
			return events.ChatCreated{Token: cmd.Token, Number: o.Number, Name: cmd.Name}
		},
		confirmed: func(ctx context.Context, o Outcome) {
			h.register(ctx, "chat", func(ctx context.Context) error { return h.numbers.ChatConfirmed(ctx, cmd.Token, o.Number) })
		},
	})
	if err != nil {
		return Chat{}, err
	}
	return Chat{Number: o.Number, Name: cmd.Name, Timestamps: Timestamps{o.At, o.At}}, nil
}

// RenameChat changes a chat's name.
type RenameChat struct {
	Token          string
	Number         int64
	Name           string
	IdempotencyKey string
}

// RenameChat publishes ChatRenamed.
func (h *Handlers) RenameChat(ctx context.Context, cmd RenameChat) (Chat, error) {
	if err := checkToken(cmd.Token); err != nil {
		return Chat{}, err
	}
	if err := checkNumber(cmd.Number, "chat"); err != nil {
		return Chat{}, err
	}
	if err := validateName(cmd.Name); err != nil {
		return Chat{}, err
	}
	o, err := h.apply(ctx, change{
		key:         cmd.IdempotencyKey,
		scope:       cmd.Token,
		fingerprint: fingerprint("RenameChat", cmd.Token, strconv.FormatInt(cmd.Number, 10), cmd.Name),
		reserve: func(ctx context.Context) (Outcome, error) {
			version, err := h.numbers.NextChatVersion(ctx, cmd.Token, cmd.Number)
			if err != nil {
				return Outcome{}, reserved(err, "chat")
			}
			return Outcome{Version: version}, nil
		},
		event: func(Outcome) events.Event {
			return events.ChatRenamed{Token: cmd.Token, Number: cmd.Number, Name: cmd.Name}
		},
	})
	if err != nil {
		return Chat{}, err
	}
	return Chat{Number: cmd.Number, Name: cmd.Name, Timestamps: Timestamps{UpdatedAt: o.At}}, nil
}
