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
	"github.com/chatsys/chat/idempotency"
	"github.com/chatsys/chat/numbering"
)

// Publisher sends one event record and returns once the broker confirmed it.
type Publisher interface {
	Publish(ctx context.Context, r events.Record) error
	// Connected reports whether a publish could be sent now.
	Connected() bool
}

// Handlers holds what every command handler needs.
type Handlers struct {
	numbers *numbering.Store
	keys    *idempotency.Store
	pub     Publisher
	codec   *events.Codec
	log     *slog.Logger
}

// New returns the command handlers. keys holds the records of commands sent
// with an Idempotency-Key.
func New(numbers *numbering.Store, keys *idempotency.Store, pub Publisher, codec *events.Codec, log *slog.Logger) *Handlers {
	return &Handlers{numbers: numbers, keys: keys, pub: pub, codec: codec, log: log}
}

// ready refuses a command before it reserves anything while the broker is
// known to be unreachable: a number reserved for a publish that cannot even
// be attempted would only leave a gap in the numbering.
func (h *Handlers) ready() error {
	if !h.pub.Connected() {
		return apperr.Unavailable(apperr.DepBroker, nil, "the event broker is unreachable; retry later")
	}
	return nil
}

// reserved maps an error from the numbering store: an unknown aggregate is
// a 404 with what, anything else means Redis is unavailable.
func reserved(err error, what string) error {
	if errors.Is(err, numbering.ErrUnknown) {
		return apperr.NotFound("%s not found", what)
	}
	if errors.Is(err, numbering.ErrRecovering) {
		return apperr.Unavailable(apperr.DepRedis, err, "numbering is being recovered after a Redis failure; retry shortly")
	}
	return apperr.Unavailable(apperr.DepRedis, err, "the numbering service is unavailable; retry later")
}

// register records a confirmed create in Redis so that dependent commands
// are accepted the moment the 201 leaves. It runs detached from the request,
// so a client that hangs up does not stop it. It is only the fast path: the
// registry projection records every create the event store holds, so a
// create whose registration is cut short here (a hang-up, a Redis blip, a
// process killed) still becomes usable within moments. Its failure is
// therefore logged, not answered: the event is stored and the 201 is true.
func (h *Handlers) register(ctx context.Context, what string, record func(context.Context) error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registerTimeout)
	defer cancel()
	if err := record(rctx); err != nil {
		h.log.Warn("could not register a confirmed create; the registry projection will", "what", what, "correlation_id", events.CorrelationID(ctx), "err", err)
	}
}

// registerTimeout bounds the fast-path registration of a create.
const registerTimeout = time.Second

// Timestamps of a resource as the events set them.
type Timestamps struct {
	CreatedAt time.Time
	UpdatedAt time.Time
}
