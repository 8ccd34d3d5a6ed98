package commands

import (
	"context"

	"github.com/chatsys/chat/events"
)

// CreateChat creates the next chat of an application. Name may be empty.
type CreateChat struct {
	Token string
	Name  string
	// HasName is false when the client sent no name; a name sent must be valid.
	HasName bool
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
	if err := h.ready(); err != nil {
		return Chat{}, err
	}
	number, err := h.numbers.ReserveChatNumber(ctx, cmd.Token)
	if err != nil {
		return Chat{}, reserved(err, "application")
	}
	env, err := h.emit(ctx, events.ChatCreated{Token: cmd.Token, Number: number, Name: cmd.Name}, 1)
	if err != nil {
		return Chat{}, err
	}
	h.register(ctx, "chat", func(ctx context.Context) error { return h.numbers.ChatConfirmed(ctx, cmd.Token, number) })
	return Chat{Number: number, Name: cmd.Name, Timestamps: Timestamps{env.OccurredAt, env.OccurredAt}}, nil
}

// RenameChat changes a chat's name.
type RenameChat struct {
	Token  string
	Number int64
	Name   string
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
	if err := h.ready(); err != nil {
		return Chat{}, err
	}
	version, err := h.numbers.NextChatVersion(ctx, cmd.Token, cmd.Number)
	if err != nil {
		return Chat{}, reserved(err, "chat")
	}
	env, err := h.emit(ctx, events.ChatRenamed{Token: cmd.Token, Number: cmd.Number, Name: cmd.Name}, version)
	if err != nil {
		return Chat{}, err
	}
	return Chat{Number: cmd.Number, Name: cmd.Name, Timestamps: Timestamps{UpdatedAt: env.OccurredAt}}, nil
}
