package projections

import (
	"context"
	"errors"

	"github.com/chatsys/chat/internal/groupcommit"
)

// Applier applies the batches that the runners of one projection in a
// process hand in at about the same time in one Apply: a process that
// holds many partitions then pays one transaction per round for all of
// them, not one each. A batch whose failure may concern it alone (a
// BatchError) fails alone; the others are applied without it.
type Applier struct {
	proj  Projection
	group *groupcommit.Group[sizedBatch, struct{}]
}

// sizedBatch is a partition's batch and its events' payload bytes.
type sizedBatch struct {
	events []Event
	bytes  int
}

// maxApplyBytes caps the payload bytes of the batches applied at once: two
// of the runners' largest batches (see Runner.batchBytes), so that an
// Apply's statements, bulk requests and memory stay bounded however many
// partitions the process holds.
const maxApplyBytes = 8 << 20

// NewApplier returns an applier of proj.
func NewApplier(proj Projection) *Applier {
	commit := func(ctx context.Context, items []sizedBatch) ([]struct{}, error) {
		batches := make([][]Event, len(items))
		for i, it := range items {
			batches[i] = it.events
		}
		if err := proj.Apply(ctx, batches); err != nil {
			if _, alone := errors.AsType[*BatchError](err); alone {
				return nil, groupcommit.Split(err)
			}
			return nil, err
		}
		return make([]struct{}, len(items)), nil
	}
	weigh := func(b sizedBatch) int { return b.bytes }
	return &Applier{proj: proj, group: groupcommit.New(commit, weigh, maxApplyBytes)}
}

// Apply applies one partition's batch, of the given payload bytes,
// together with those other callers hand in meanwhile. The Apply it joins
// may run under another caller's context: callers bound theirs alike.
func (a *Applier) Apply(ctx context.Context, batch []Event, bytes int) error {
	_, err := a.group.Do(ctx, sizedBatch{events: batch, bytes: bytes})
	return err
}
