// Package projections folds the event log into what is read from elsewhere,
// partition by partition: the runner that tails a partition of the log for
// a projection, the applier that applies the runners' batches together,
// the projections, and replay, which rebuilds one while the system serves.
//
// Each projection writes one side:
//   - MySQL, the read side's tables (<ns>_applications, <ns>_chats,
//     <ns>_messages), which the API reads;
//   - Search, the read side's search index in Elasticsearch;
//   - Registry, the command side's state in Redis: which applications and
//     chats exist, which messages are deleted, the rate-limit overrides.
//
// A projection keeps its positions where it writes or beside it: the MySQL
// one in <ns>_read_position, in the transaction of its rows; the others in
// <ns>_checkpoints.
package projections

import (
	"context"
	"time"

	"github.com/chatsys/chat/events"
)

// Event is one stored event, decoded.
type Event struct {
	Partition  int
	Position   int64
	RecordedAt time.Time
	events.Envelope
}

// Projection is one model folded from the event log, partition by
// partition. It is built with the stores it writes and keeps its
// positions in.
type Projection interface {
	// Name identifies the projection's checkpoints.
	Name() string
	// Checkpoint returns the position of the last event of partition
	// applied.
	Checkpoint(ctx context.Context, partition int) (int64, error)
	// Apply applies batches of distinct partitions, each in position
	// order, in one go, and records each one's last position as its
	// partition's checkpoint, all or nothing, so that no event is applied
	// twice or skipped. Applying a batch again, or at once from two
	// processes, changes nothing more. An error that may concern some of
	// the batches only is a *BatchError; one that concerns them all alike
	// (the database is down) is not.
	Apply(ctx context.Context, batches [][]Event) error
}

// BatchError is an error of Apply that may concern one partition's batch
// alone: the batch no longer follows on from its checkpoint, a fold cannot
// apply one of its events, the database refused one of its rows, the
// state it writes is being rebuilt for some applications. An Applier then
// applies each batch alone, so that the others go on without it. An error
// that concerns all the batches alike is not one, lest an outage cost a
// try per batch.
type BatchError struct{ Err error }

func (e *BatchError) Error() string { return e.Err.Error() }
func (e *BatchError) Unwrap() error { return e.Err }

// ofBatch marks err as one that may concern one batch alone; nil stays nil.
func ofBatch(err error) error {
	if err == nil {
		return nil
	}
	return &BatchError{Err: err}
}
