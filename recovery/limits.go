package recovery

import (
	"context"
	"fmt"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/ratelimit"
)

// Overrides keeps the applications' rate-limit overrides; ratelimit.Store
// is the one the processes use. Clearing the lost slots deletes theirs
// along with the numbering state, so the rebuild writes them back.
type Overrides interface {
	SetOverrides(ctx context.Context, overrides []ratelimit.Override) error
}

// overrides reads, for the applications st holds, the last override each
// was given. Only a stream past its create can hold one, so the log is
// read through the stream index for those alone.
func overrides(ctx context.Context, store *eventstore.Store, st *state) ([]ratelimit.Override, error) {
	var streams []string
	for token, a := range st.apps {
		if a[0] > 1 {
			streams = append(streams, events.ApplicationStream(token))
		}
	}
	codec := events.NewCodec()
	last := map[string]ratelimit.Override{}
	err := store.StreamEvents(ctx, streams, events.TypeApplicationLimitsSet, func(r events.Record) error {
		env, err := codec.Decode(r)
		if err != nil {
			return fmt.Errorf("stream %s version %d: %w", r.StreamID, r.StreamVersion, err)
		}
		ev := env.Event.(events.ApplicationLimitsSet)
		last[ev.Token] = ratelimit.OverrideOf(env.StreamVersion, ev) // in version order: the last one wins
		return nil
	})
	out := make([]ratelimit.Override, 0, len(last))
	for _, o := range last {
		out = append(out, o)
	}
	return out, err
}

// restoreOverrides writes back the overrides of the applications st holds.
func (r *Recovery) restoreOverrides(ctx context.Context, st *state) (int, error) {
	if r.overrides == nil {
		return 0, nil
	}
	over, err := overrides(ctx, r.store, st)
	if err != nil {
		return 0, fmt.Errorf("read the rate-limit overrides: %w", err)
	}
	if err := r.overrides.SetOverrides(ctx, over); err != nil {
		return 0, fmt.Errorf("restore the rate-limit overrides: %w", err)
	}
	return len(over), nil
}
