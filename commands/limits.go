package commands

import (
	"context"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/events"
)

// Override is an application's rate-limit override as an
// ApplicationLimitsSet sets it, with that event's stream version. A nil
// field follows the configured default; 0 lifts that limit.
type Override struct {
	Token    string
	Version  int64
	Commands *int64
	Reads    *int64
	Burst    *int64
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
func (h *Handlers) SetApplicationLimits(ctx context.Context, cmd SetApplicationLimits) (Override, error) {
	if err := checkToken(cmd.Token); err != nil {
		return Override{}, err
	}
	for _, v := range []struct {
		name    string
		value   *int64
		lo, max int64
	}{{"commands", cmd.Commands, 0, maxRate}, {"reads", cmd.Reads, 0, maxRate}, {"burst", cmd.Burst, 1, maxBurst}} {
		if v.value != nil && (*v.value < v.lo || *v.value > v.max) {
			return Override{}, apperr.Validation("%s must be from %d to %d, got %d", v.name, v.lo, v.max, *v.value)
		}
	}
	ev := events.ApplicationLimitsSet{Token: cmd.Token, Commands: cmd.Commands, Reads: cmd.Reads, Burst: cmd.Burst}
	o, err := h.apply(ctx, change{
		scope: cmd.Token,
		reserve: func(ctx context.Context) (Outcome, error) {
			version, err := h.numbers.NextApplicationVersion(ctx, cmd.Token)
			if err != nil {
				return Outcome{}, reserved(err, "application")
			}
			return Outcome{Version: version}, nil
		},
		event: func(Outcome) events.Event { return ev },
		confirmed: func(ctx context.Context, o Outcome) {
			if h.overrides != nil {
				h.register(ctx, "rate-limit override", func(ctx context.Context) error {
					return h.overrides.SetOverride(ctx, overrideOf(o.Version, ev))
				})
			}
		},
	})
	if err != nil {
		return Override{}, err
	}
	return overrideOf(o.Version, ev), nil
}

// overrideOf is the override an event sets.
func overrideOf(version int64, ev events.ApplicationLimitsSet) Override {
	return Override{Token: ev.Token, Version: version, Commands: ev.Commands, Reads: ev.Reads, Burst: ev.Burst}
}
