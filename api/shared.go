package api

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/chatsys/chat/readmodel"
)

// sharedReads lets the streams of one chat that are at the same cursor make
// one read where they would make one each: a wake-up of a chat followed by
// a thousand streams costs one query, not a thousand. A stream joins a read
// only if that read began after the stream was woken, so it sees whatever
// the wake-up announced.
type sharedReads struct {
	q     Queries
	mu    sync.Mutex
	calls map[readKey]*readCall
}

type readKey struct {
	token       string
	chat, after int64
}

type readCall struct {
	started time.Time
	done    chan struct{}
	items   []readmodel.Change
	// events is the items as Server-Sent Events, encoded once for every
	// stream that shares the read.
	events []byte
	err    error
}

// sharedReadTimeout bounds a shared read, which runs detached from the
// stream that began it (the others wait for it too).
const sharedReadTimeout = 10 * time.Second

// read returns up to streamBatch changes of the chat after cursor, from a
// read that began no earlier than since. It stops waiting when ctx ends or
// the process stops; the read itself, which others may wait for, goes on
// to its end, within sharedReadTimeout.
func (sr *sharedReads) read(ctx context.Context, stopping <-chan struct{}, token string, chat, after int64, since time.Time) (*readCall, error) {
	k := readKey{token, chat, after}
	sr.mu.Lock()
	c := sr.calls[k]
	if c == nil || c.started.Before(since) {
		c = &readCall{started: time.Now(), done: make(chan struct{})}
		sr.calls[k] = c
		go sr.run(k, c)
	}
	sr.mu.Unlock()
	select {
	case <-c.done:
		return c, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-stopping:
		return nil, errStopping
	}
}

// run makes the read of call c.
func (sr *sharedReads) run(k readKey, c *readCall) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedReadTimeout)
	defer cancel()
	got, err := sr.q.Changes(ctx, k.token, k.chat, readmodel.Span{After: k.after, Limit: streamBatch})
	if err == nil {
		c.items, err = got.Collect(ctx)
	}
	var buf bytes.Buffer
	for _, it := range c.items {
		if err == nil {
			err = appendEvent(&buf, changeEvent(it), it.Position, messageOut(it.Message))
		}
	}
	c.events, c.err = buf.Bytes(), err
	close(c.done)
	sr.mu.Lock()
	if sr.calls[k] == c {
		delete(sr.calls, k)
	}
	sr.mu.Unlock()
}

// changeEvent names a change's Server-Sent Event: "delete" for a deleted
// message, "message" for a created or edited one.
func changeEvent(c readmodel.Change) string {
	if c.Deleted() {
		return "delete"
	}
	return "message"
}

// errStopping ends a stream's wait when the process stops.
var errStopping = errors.New("the process is stopping")
