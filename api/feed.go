package api

import (
	"bytes"
	"context"
	"math"
	"sync"
	"time"

	"github.com/chatsys/chat/readmodel"
)

// A feed holds a chat's latest changes, read once and encoded once for
// every stream of the chat in this process: a thousand streams of a busy
// chat cost one read per wake-up and, each, one write of what it lacks,
// whatever cursor each is at. A stream whose cursor lies before the feed's
// window reads the read tables itself until it reaches it.
type feed struct {
	token string
	chat  int64

	mu sync.Mutex
	// items hold every change at a position in (base, head], in position
	// order: a message edited after it was read is in it twice, and a
	// stream is sent only its latest.
	items      []feedItem
	base, head int64
	// changed is closed, and replaced, whenever head moves.
	changed chan struct{}
	// users and stop belong to feeds.mu.
	users int
	stop  context.CancelFunc
}

type feedItem struct {
	position, number int64
	occurred         time.Time
	event            []byte // the change as one Server-Sent Event
}

// feedWindow bounds a feed's items: a stream that falls further behind
// reads the read tables itself. feedRead is what one read of a feed takes.
const (
	feedWindow = 1024
	feedRead   = 256
)

// feeds are the feeds of the chats with streams in this process.
type feeds struct {
	mu     sync.Mutex
	byChat map[chatKey]*feed
}

type chatKey struct {
	token string
	chat  int64
}

// join returns the chat's feed, started at latest (the chat's latest
// change, as the stream read it) if it had none.
func (s *server) join(token string, chat, latest int64) *feed {
	fs := &s.feeds
	fs.mu.Lock()
	defer fs.mu.Unlock()
	k := chatKey{token, chat}
	if f := fs.byChat[k]; f != nil {
		f.users++
		return f
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{token: token, chat: chat, base: latest, head: latest, changed: make(chan struct{}), users: 1, stop: cancel}
	fs.byChat[k] = f
	if s.streams.running != nil {
		s.streams.running.Add(1)
	}
	go func() {
		if s.streams.running != nil {
			defer s.streams.running.Done()
		}
		s.runFeed(ctx, f)
	}()
	return f
}

// leave stops the feed when its last stream has left.
func (s *server) leave(f *feed) {
	fs := &s.feeds
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f.users--; f.users == 0 {
		delete(fs.byChat, chatKey{f.token, f.chat})
		f.stop()
	}
}

// runFeed reads the chat's changes into f when the chat is woken, and every
// re-read interval without a wake-up, until ctx ends. A failed read is
// tried again at the next: the streams wait meanwhile.
func (s *server) runFeed(ctx context.Context, f *feed) {
	// Watch before the first read, so that a change committed between the
	// stream's read of the latest change and the watch is read too.
	wake, stop := s.watch(f.token, f.chat)
	defer stop()
	recheck := time.NewTimer(s.jitteredRecheck())
	defer recheck.Stop()
	for {
		for s.readFeed(ctx, f) {
		}
		select {
		case <-ctx.Done():
			return
		case <-s.streams.stopping:
			return
		case <-wake:
		case <-recheck.C:
			recheck.Reset(s.jitteredRecheck())
		}
	}
}

// readFeed reads the changes after f's head once, and reports whether it was
// full (more may wait).
func (s *server) readFeed(ctx context.Context, f *feed) bool {
	f.mu.Lock()
	after := f.head
	f.mu.Unlock()
	got, err := s.q.Changes(ctx, f.token, f.chat, readmodel.Span{After: after, Limit: feedRead})
	var items []feedItem
	if err == nil {
		err = got.Each(ctx, func(c readmodel.Change) error {
			var buf bytes.Buffer
			if err := appendEvent(&buf, changeEvent(c), c.Position, messageOut(c.Message)); err != nil {
				return err
			}
			items = append(items, feedItem{position: c.Position, number: c.Number, occurred: c.UpdatedAt, event: buf.Bytes()})
			return nil
		})
	}
	if err != nil || len(items) == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items = append(f.items, items...)
	if over := len(f.items) - feedWindow; over > 0 {
		f.base = f.items[over-1].position
		f.items = append(f.items[:0:0], f.items[over:]...)
	}
	f.head = items[len(items)-1].position
	close(f.changed)
	f.changed = make(chan struct{})
	return len(items) == feedRead
}

// after appends to buf what a stream at cursor lacks: each message changed
// after it, once, as it last read, calling sent (if not nil) with when each
// occurred. It returns the cursor after them and the channel closed when
// more comes; ok is false when the cursor lies before the feed's window.
func (f *feed) after(cursor int64, buf *bytes.Buffer, sent func(occurred time.Time)) (next int64, changed <-chan struct{}, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cursor < f.base {
		return cursor, f.changed, false
	}
	from := len(f.items)
	for from > 0 && f.items[from-1].position > cursor {
		from--
	}
	// A message changed more than once after the cursor is sent once, at
	// its latest position, as a read of the read tables would have it.
	var (
		seen map[int64]bool
		keep []int
	)
	for i := len(f.items) - 1; i >= from; i-- {
		n := f.items[i].number
		if seen[n] {
			continue
		}
		if seen == nil {
			seen = make(map[int64]bool)
		}
		seen[n] = true
		keep = append(keep, i)
	}
	for j := len(keep) - 1; j >= 0; j-- {
		it := f.items[keep[j]]
		buf.Write(it.event)
		if sent != nil {
			sent(it.occurred)
		}
	}
	return max(cursor, f.head), f.changed, true
}

// changeEvent names a change's Server-Sent Event: "delete" for a deleted
// message, "message" for a created or edited one.
func changeEvent(c readmodel.Change) string {
	if c.Deleted() {
		return "delete"
	}
	return "message"
}

// latestChange is the position of the chat's latest change (0 when it has
// none), which checks the chat exists.
func (s *server) latestChange(ctx context.Context, token string, chat int64) (int64, error) {
	latest, err := s.q.Changes(ctx, token, chat, readmodel.Span{Before: math.MaxInt64, Limit: 1})
	return latest.To, err
}
