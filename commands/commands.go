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
)

// backlogRetry is how long a client refused for a full backlog is asked to
// wait: about what a writer needs to drain a good part of a full queue.
const backlogRetry = 2 * time.Second

// Config is what the command handlers need.
type Config struct {
	Numbering Numbering
	// Keys holds the records of commands sent with an Idempotency-Key.
	Keys      KeyRecords
	Publisher Publisher
	// Codec encodes events for the wire; events.NewCodec() when nil.
	Codec *events.Codec
	// Log gets what is logged rather than answered; discarded when nil.
	Log *slog.Logger
	// SendWithin bounds the time from reserving a number or version to
	// sending its event; past it the event is not sent (0: no bound).
	SendWithin time.Duration
	// Overrides (optional) records confirmed rate-limit overrides.
	Overrides Overrides
}

// Handlers holds what every command handler needs.
type Handlers struct {
	numbers Numbering
	keys    KeyRecords
	pub     Publisher
	codec   *events.Codec
	log     *slog.Logger
	within  time.Duration
	// overrides records confirmed rate-limit overrides; nil leaves them to
	// the registry projection.
	overrides Overrides
}

// New returns the command handlers.
func New(cfg Config) *Handlers {
	if cfg.Codec == nil {
		cfg.Codec = events.NewCodec()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Handlers{numbers: cfg.Numbering, keys: cfg.Keys, pub: cfg.Publisher, codec: cfg.Codec, log: cfg.Log, within: cfg.SendWithin, overrides: cfg.Overrides}
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

// sendBy bounds ctx by the time within which an event whose number was just
// reserved may still be sent.
func (h *Handlers) sendBy(ctx context.Context) (context.Context, context.CancelFunc) {
	if h.within <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, h.within)
}

// reserved maps an error from Numbering: an unknown aggregate is a 404 with
// what, anything else means Redis is unavailable.
func reserved(err error, what string) error {
	if errors.Is(err, ErrUnknown) {
		return apperr.NotFound("%s not found", what)
	}
	if errors.Is(err, ErrDeleted) {
		return apperr.MessageDeleted()
	}
	if errors.Is(err, ErrRecovering) {
		return apperr.Unavailable(apperr.DepRedis, err, "numbering is being recovered after a Redis failure; retry shortly")
	}
	return apperr.Unavailable(apperr.DepRedis, err, "the numbering service is unavailable; retry later")
}

// register records a confirmed create (or delete) in Redis so that
// dependent commands are accepted (or refused) the moment the answer leaves. It runs detached from the request,
// so a client that hangs up does not stop it. It is only the fast path: the
// registry projection records every create the event store holds, so a
// create whose registration is cut short here (a hang-up, a Redis blip, a
// process killed) still becomes usable within moments. Its failure is
// therefore logged, not answered: the event is stored and the 201 is true.
func (h *Handlers) register(ctx context.Context, what string, record func(context.Context) error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registerTimeout)
	defer cancel()
	if err := record(rctx); err != nil {
		h.log.Warn("could not record a confirmed create or delete; the registry projection will", "what", what, "correlation_id", events.CorrelationID(ctx), "err", err)
	}
}

// registerTimeout bounds the fast-path registration of a create.
const registerTimeout = time.Second

// Timestamps of a resource as the events set them.
type Timestamps struct {
	CreatedAt time.Time
	UpdatedAt time.Time
}
