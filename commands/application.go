package commands

import (
	"context"

	"github.com/chatsys/chat/events"
)

// CreateApplication creates an application with a fresh token.
type CreateApplication struct {
	Name string
	// IdempotencyKey, when set, makes a retry answer the first attempt's
	// application instead of creating another.
	IdempotencyKey string
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
	o, err := h.apply(ctx, change{
		key:         cmd.IdempotencyKey,
		fingerprint: fingerprint("CreateApplication", cmd.Name),
		reserve: func(ctx context.Context) (Outcome, error) {
			token := NewToken()
			if err := h.numbers.ReserveApplication(ctx, token); err != nil {
				return Outcome{}, reserved(err, "application")
			}
			return Outcome{Token: token, Version: 1}, nil
		},
		event: func(o Outcome) events.Event {
			return events.ApplicationCreated{Token: o.Token, Name: cmd.Name}
		},
		confirmed: func(ctx context.Context, o Outcome) {
			h.register(ctx, "application", func(ctx context.Context) error { return h.numbers.ApplicationConfirmed(ctx, o.Token) })
		},
	})
	if err != nil {
		return Application{}, err
	}
	return Application{Token: o.Token, Name: cmd.Name, Timestamps: Timestamps{o.At, o.At}}, nil
}

// RenameApplication changes an application's name.
type RenameApplication struct {
	Token          string
	Name           string
	IdempotencyKey string
}

// RenameApplication publishes ApplicationRenamed.
func (h *Handlers) RenameApplication(ctx context.Context, cmd RenameApplication) (Application, error) {
	if err := checkToken(cmd.Token); err != nil {
		return Application{}, err
	}
	if err := validateName(cmd.Name); err != nil {
		return Application{}, err
	}
	o, err := h.apply(ctx, change{
		key:         cmd.IdempotencyKey,
		scope:       cmd.Token,
		fingerprint: fingerprint("RenameApplication", cmd.Token, cmd.Name),
		reserve: func(ctx context.Context) (Outcome, error) {
			version, err := h.numbers.NextApplicationVersion(ctx, cmd.Token)
			if err != nil {
				return Outcome{}, reserved(err, "application")
			}
			return Outcome{Version: version}, nil
		},
		event: func(Outcome) events.Event {
			return events.ApplicationRenamed{Token: cmd.Token, Name: cmd.Name}
		},
	})
	if err != nil {
		return Application{}, err
	}
	return Application{Token: cmd.Token, Name: cmd.Name, Timestamps: Timestamps{UpdatedAt: o.At}}, nil
}
