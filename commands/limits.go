package commands

import (
	"context"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/idempotency"
	"github.com/chatsys/chat/ratelimit"
)

// Overrides records an application's rate-limit override once its event is
// confirmed, so that the override holds from the moment the operator is
// told; ratelimit.Store is the one the processes use. The registry
// projection records every stored one too.
type Overrides interface {
	SetOverrides(ctx context.Context, overrides []ratelimit.Override) error
}

// SetApplicationLimits replaces an application's rate-limit override. A nil
// field follows the configured default; 0 lifts that limit.
type SetApplicationLimits struct {
	Token string
	// Commands and Reads are requests per second.
	Commands, Reads *int64
	// Burst is how many seconds of its rate an idle budget holds.
	Burst *int64
}

// The bounds of an override's values, those of the configuration's.
const (
	maxRate  = 1000000
	maxBurst = 3600
)

// SetApplicationLimits publishes ApplicationLimitsSet on the application's
// stream, with the application's next version, so that the override is in
// the event log like every other change and a rebuild finds it.
func (h *Handlers) SetApplicationLimits(ctx context.Context, cmd SetApplicationLimits) (ratelimit.Override, error) {
	if err := checkToken(cmd.Token); err != nil {
		return ratelimit.Override{}, err
	}
	for _, v := range []struct {
		name    string
		value   *int64
		lo, max int64
	}{{"commands", cmd.Commands, 0, maxRate}, {"reads", cmd.Reads, 0, maxRate}, {"burst", cmd.Burst, 1, maxBurst}} {
		if v.value != nil && (*v.value < v.lo || *v.value > v.max) {
			return ratelimit.Override{}, apperr.Validation("%s must be from %d to %d, got %d", v.name, v.lo, v.max, *v.value)
		}
	}
	ev := events.ApplicationLimitsSet{Token: cmd.Token, Commands: cmd.Commands, Reads: cmd.Reads, Burst: cmd.Burst}
	o, err := h.apply(ctx, change{
		scope: cmd.Token,
		reserve: func(ctx context.Context) (idempotency.Outcome, error) {
			version, err := h.numbers.NextApplicationVersion(ctx, cmd.Token)
			if err != nil {
				return idempotency.Outcome{}, reserved(err, "application")
			}
			return idempotency.Outcome{Version: version}, nil
		},
		event: func(idempotency.Outcome) events.Event { return ev },
		confirmed: func(ctx context.Context, o idempotency.Outcome) {
			if h.overrides != nil {
				h.register(ctx, "rate-limit override", func(ctx context.Context) error {
					return h.overrides.SetOverrides(ctx, []ratelimit.Override{ratelimit.OverrideOf(o.Version, ev)})
				})
			}
		},
	})
	if err != nil {
		return ratelimit.Override{}, err
	}
	return ratelimit.OverrideOf(o.Version, ev), nil
}
