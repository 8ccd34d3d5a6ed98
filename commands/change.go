package commands

import (
	"context"
	"errors"
	"time"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/events"
)

// change is one command's way through the command side: what it reserves,
// the event it publishes for that reservation, and what follows when the
// event was certainly not sent or was confirmed. With an idempotency key, it
// is applied at most once per key.
type change struct {
	// key is the client's Idempotency-Key, "" for none; scope is the
	// application it belongs to, "" for a new application; fingerprint
	// names what the request asks for.
	key, scope, fingerprint string
	// reserve takes the number or version (and token) the event needs.
	reserve func(ctx context.Context) (Outcome, error)
	// event is the event of a reservation.
	event func(o Outcome) events.Event
	// unsent (optional) follows a publish that certainly did not happen.
	unsent func(ctx context.Context, o Outcome)
	// confirmed (optional) follows the broker's confirm.
	confirmed func(ctx context.Context, o Outcome)
}

// leaseMargin is how much of a key's lease is left when its attempt's
// deadline passes, so that no retry takes a key over while its attempt runs.
const leaseMargin = time.Second

// apply reserves, publishes and awaits the confirm of c's event, and returns
// its outcome.
func (h *Handlers) apply(ctx context.Context, c change) (Outcome, error) {
	if c.key != "" {
		return h.applyOnce(ctx, c)
	}
	if err := h.ready(); err != nil {
		return Outcome{}, err
	}
	o, err := c.reserve(ctx)
	if err != nil {
		return o, err
	}
	ctx, cancel := h.sendBy(ctx)
	defer cancel()
	env, err := newEnvelope(ctx, c, &o)
	if err != nil {
		return o, err
	}
	if err := h.publish(ctx, env); err != nil {
		if errors.Is(err, ErrNotSent) {
			h.unsent(ctx, c, o)
		}
		return o, err
	}
	h.confirmed(ctx, c, o)
	return o, nil
}

// applyOnce applies c under its idempotency key. A retry of a confirmed
// attempt gets its outcome; a retry of an attempt whose outcome is unknown
// publishes the same event again (the event store keeps an event id once),
// so the change is made once whichever copy is stored. It runs detached from
// the client: one that hangs up must not stop the record from learning the
// outcome that its retry will ask for.
func (h *Handlers) applyOnce(ctx context.Context, c change) (Outcome, error) {
	detached := context.WithoutCancel(ctx)
	claim, err := h.keys.Claim(detached, c.scope, c.key, c.fingerprint)
	if err != nil {
		return Outcome{}, claimed(err)
	}
	ctx, cancel := context.WithTimeout(detached, h.keys.Lease()-leaseMargin)
	defer cancel()

	if claim.State == ClaimReplay {
		// A confirmed attempt's answer is known: it needs no broker.
		return claim.Outcome, nil
	}
	if err := h.ready(); err != nil {
		if claim.State == ClaimResume {
			h.keep(ctx, "abandon", h.keys.Abandon, claim) // an earlier copy may be stored
		} else {
			h.keep(ctx, "release", h.keys.Release, claim)
		}
		return Outcome{}, err
	}
	switch claim.State {
	case ClaimResume:
		o := claim.Outcome
		env := events.Envelope{EventID: o.EventID, StreamVersion: o.Version, OccurredAt: o.At, CorrelationID: events.CorrelationID(ctx), Event: c.event(o)}
		if err := h.publish(ctx, env); err != nil {
			// Even unsent, an earlier copy may be stored: keep the record.
			h.keep(ctx, "abandon", h.keys.Abandon, claim)
			return o, err
		}
		h.keep(ctx, "complete", h.keys.Done, claim)
		h.confirmed(ctx, c, o)
		return o, nil
	}

	o, err := c.reserve(ctx)
	if err != nil {
		h.keep(ctx, "release", h.keys.Release, claim)
		return o, err
	}
	ctx, cancelSend := h.sendBy(ctx)
	defer cancelSend()
	env, err := newEnvelope(ctx, c, &o)
	if err != nil {
		h.keep(ctx, "release", h.keys.Release, claim)
		return o, err
	}
	// The event is recorded before it is published, so that a retry can
	// only ever publish this very event.
	if err := h.keys.Save(ctx, claim, o); err != nil {
		// Nothing was published: the number is a gap, as a create that was
		// certainly not sent leaves. A lost lease means Redis was slower than
		// the lease, so that too is Redis being unavailable.
		h.unsent(ctx, c, o)
		if !errors.Is(err, ErrKeyLost) {
			h.keep(ctx, "release", h.keys.Release, claim)
		}
		return o, apperr.Unavailable(apperr.DepRedis, err, "the idempotency record could not be written; retry later")
	}
	if err := h.publish(ctx, env); err != nil {
		if errors.Is(err, ErrNotSent) {
			h.unsent(ctx, c, o)
			h.keep(ctx, "release", h.keys.Release, claim)
		} else {
			h.keep(ctx, "abandon", h.keys.Abandon, claim)
		}
		return o, err
	}
	h.keep(ctx, "complete", h.keys.Done, claim)
	h.confirmed(ctx, c, o)
	return o, nil
}

// keep updates a claim's record after the fact. A failure is logged, not
// answered: the record stays pending, and a retry after its lease publishes
// the same event again, which changes nothing a second time.
func (h *Handlers) keep(ctx context.Context, what string, update func(context.Context, *Claim) error, claim *Claim) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keepTimeout)
	defer cancel()
	if err := update(ctx, claim); err != nil {
		h.log.Warn("could not update an idempotency record; a retry will publish its event again", "update", what, "correlation_id", events.CorrelationID(ctx), "err", err)
	}
}

// keepTimeout bounds an update of a record after the fact, which may come
// when the attempt's own deadline is near.
const keepTimeout = time.Second

// newEnvelope wraps the event of o in an envelope with a new event id and
// the current time, and notes both in o.
func newEnvelope(ctx context.Context, c change, o *Outcome) (events.Envelope, error) {
	env, err := events.New(c.event(*o), o.Version, events.CorrelationID(ctx))
	if err != nil {
		return events.Envelope{}, err
	}
	o.EventID, o.At = env.EventID, env.OccurredAt
	return env, nil
}

// publish encodes env and publishes it. Any failure is "unavailable": the
// caller may retry.
func (h *Handlers) publish(ctx context.Context, env events.Envelope) error {
	rec, err := h.codec.Encode(env)
	if err != nil {
		return err
	}
	if err := h.pub.Publish(ctx, rec); err != nil {
		if errors.Is(err, ErrBacklogFull) {
			return apperr.Backlogged(backlogRetry, "the service is behind storing changes to this application; retry in a few seconds")
		}
		return apperr.Unavailable(apperr.DepBroker, err, "the event broker did not accept the change; retry later")
	}
	return nil
}

func (h *Handlers) unsent(ctx context.Context, c change, o Outcome) {
	if c.unsent != nil {
		c.unsent(ctx, o)
	}
}

func (h *Handlers) confirmed(ctx context.Context, c change, o Outcome) {
	if c.confirmed != nil {
		c.confirmed(ctx, o)
	}
}

// claimed maps an error from claiming an idempotency key.
func claimed(err error) error {
	switch {
	case errors.Is(err, ErrKeyReused):
		return apperr.KeyReused("this Idempotency-Key was used for a different request; use a new key for a new request")
	case errors.Is(err, ErrKeyInFlight):
		return apperr.InFlight(time.Second, "a request with this Idempotency-Key is still being processed; retry shortly")
	case errors.Is(err, ErrKeyLimit):
		return apperr.KeyLimit(retryAfter(err), "too many Idempotency-Keys are in use for this application (or, for new applications, this service); retry without a key, or once older keys expire")
	}
	return apperr.Unavailable(apperr.DepRedis, err, "the idempotency record could not be read; retry later")
}
