// Package commands validates requests to change state, reserves numbers and
// versions in Redis, and publishes the resulting events. It never touches
// MySQL: the event store and projections are built from what it publishes.
package commands

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/numbering"
)

// Publisher sends one event record and returns once the broker confirmed it.
type Publisher interface {
	Publish(ctx context.Context, r events.Record) error
}

// Handlers holds what every command handler needs.
type Handlers struct {
	numbers *numbering.Store
	pub     Publisher
	codec   *events.Codec
	log     *slog.Logger
}

// New returns the command handlers.
func New(numbers *numbering.Store, pub Publisher, codec *events.Codec, log *slog.Logger) *Handlers {
	return &Handlers{numbers: numbers, pub: pub, codec: codec, log: log}
}

// emit wraps ev in an envelope and publishes it; the envelope comes back for
// its time stamp. Any failure is "unavailable": the caller may retry.
func (h *Handlers) emit(ctx context.Context, ev events.Event, version int64) (events.Envelope, error) {
	env, err := events.New(ev, version, events.CorrelationID(ctx))
	if err != nil {
		return events.Envelope{}, err
	}
	rec, err := h.codec.Encode(env)
	if err != nil {
		return events.Envelope{}, err
	}
	if err := h.pub.Publish(ctx, rec); err != nil {
		return events.Envelope{}, apperr.Unavailable(err, "the event broker did not accept the change; retry later")
	}
	return env, nil
}

// reserved maps an error from the numbering store: an unknown aggregate is
// a 404 with what, anything else means Redis is unavailable.
func reserved(err error, what string) error {
	if errors.Is(err, numbering.ErrUnknown) {
		return apperr.NotFound("%s not found", what)
	}
	if errors.Is(err, numbering.ErrRecovering) {
		return apperr.Unavailable(err, "numbering is being recovered after a Redis failure; retry shortly")
	}
	return apperr.Unavailable(err, "the numbering service is unavailable; retry later")
}

// confirmed maps a failure to record a confirmed create. The event is stored,
// but until Redis knows of it dependent commands would be refused, so the
// request reports the failure instead of a success it cannot honour.
func confirmed(err error) error {
	if err == nil {
		return nil
	}
	return apperr.Unavailable(err, "the change was stored but could not be registered; retry later")
}

// Timestamps of a resource as the events set them.
type Timestamps struct {
	CreatedAt time.Time
	UpdatedAt time.Time
}
