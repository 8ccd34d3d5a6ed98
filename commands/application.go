package commands

import (
	"context"

	"github.com/chatsys/chat/events"
)

// CreateApplication creates an application with a fresh token.
type CreateApplication struct {
	Name string
}

// Application is an application as a command left it.
type Application struct {
	Token string
	Name  string
	Timestamps
}

// CreateApplication publishes ApplicationCreated under a new token.
func (h *Handlers) CreateApplication(ctx context.Context, cmd CreateApplication) (Application, error) {
	if err := validateName(cmd.Name); err != nil {
		return Application{}, err
	}
	if err := h.ready(); err != nil {
		return Application{}, err
	}
	token := NewToken()
	if err := h.numbers.ReserveApplication(ctx, token); err != nil {
		return Application{}, reserved(err, "application")
	}
	env, err := h.emit(ctx, events.ApplicationCreated{Token: token, Name: cmd.Name}, 1)
	if err != nil {
		return Application{}, err
	}
	h.register(ctx, "application", func(ctx context.Context) error { return h.numbers.ApplicationConfirmed(ctx, token) })
	return Application{Token: token, Name: cmd.Name, Timestamps: Timestamps{env.OccurredAt, env.OccurredAt}}, nil
}

// RenameApplication changes an application's name.
type RenameApplication struct {
	Token string
	Name  string
}

// RenameApplication publishes ApplicationRenamed.
func (h *Handlers) RenameApplication(ctx context.Context, cmd RenameApplication) (Application, error) {
	if err := checkToken(cmd.Token); err != nil {
		return Application{}, err
	}
	if err := validateName(cmd.Name); err != nil {
		return Application{}, err
	}
	if err := h.ready(); err != nil {
		return Application{}, err
	}
	version, err := h.numbers.NextApplicationVersion(ctx, cmd.Token)
	if err != nil {
		return Application{}, reserved(err, "application")
	}
	env, err := h.emit(ctx, events.ApplicationRenamed{Token: cmd.Token, Name: cmd.Name}, version)
	if err != nil {
		return Application{}, err
	}
	return Application{Token: cmd.Token, Name: cmd.Name, Timestamps: Timestamps{UpdatedAt: env.OccurredAt}}, nil
}
