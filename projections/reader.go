package projections

import (
	"context"

	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/groupcommit"
)

// Reader reads the batches of the runners that share it together: the
// runners a process's append wakes ask for their partitions at about the
// same time, and one query answers them all, so that the reads of a
// process do not grow with the partitions each append touches.
type Reader struct {
	group *groupcommit.Group[eventstore.ReadRequest, []eventstore.Stored]
}

// maxReadsTogether caps the requests one read answers (the subqueries of
// one statement).
const maxReadsTogether = 64

// NewReader returns a reader of store.
func NewReader(store *eventstore.Store) *Reader {
	return &Reader{group: groupcommit.New(store.ReadMany, nil, maxReadsTogether)}
}

// Read is eventstore.Store.Read, together with the requests other callers
// hand in meanwhile. The read it joins may run under another caller's
// context: callers bound theirs alike.
func (r *Reader) Read(ctx context.Context, req eventstore.ReadRequest) ([]eventstore.Stored, error) {
	return r.group.Do(ctx, req)
}
