// Package wakeup carries the wake-ups of chats whose messages changed: a
// process's hub of watchers per chat, and the Redis pub/sub that brings
// every process the wake-ups of the others. A wake-up carries no data; its
// watchers re-read the chat after their cursors.
package wakeup

import (
	"strconv"
	"sync"
	"time"
)

// Chat names a chat: its application's token and its number.
type Chat struct {
	Token  string
	Number int64
}

func (c Chat) String() string { return c.Token + "/" + strconv.FormatInt(c.Number, 10) }

// Hub holds the watchers of each chat in one process.
type Hub struct {
	mu      sync.Mutex
	watched map[Chat]*watched
	gather  time.Duration
}

// watched is a chat's watchers, when it was last woken, and whether a
// wake-up is held until gather has passed since then.
type watched struct {
	chans map[chan struct{}]struct{}
	woken time.Time
	held  bool
}

// Gather is how long a busy chat's wake-ups are held after it was woken.
// Its watchers (a thousand streams, say) then share one read and one write
// each for that time's changes, instead of one per change; a wake-up after
// a quiet spell goes at once.
const Gather = 50 * time.Millisecond

// NewHub returns an empty hub that wakes a chat's watchers at most once
// every gather.
func NewHub(gather time.Duration) *Hub {
	return &Hub{watched: map[Chat]*watched{}, gather: gather}
}

// Watch returns a channel that receives when the chat is woken, and a func
// that stops the watch. Wake-ups coalesce: the channel holds at most one.
func (h *Hub) Watch(token string, chat int64) (<-chan struct{}, func()) {
	k, ch := Chat{token, chat}, make(chan struct{}, 1)
	h.mu.Lock()
	w := h.watched[k]
	if w == nil {
		w = &watched{chans: map[chan struct{}]struct{}{}}
		h.watched[k] = w
	}
	w.chans[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(w.chans, ch)
		if len(w.chans) == 0 && h.watched[k] == w {
			delete(h.watched, k)
		}
	}
}

// Wake wakes the watchers of chats, or, for a chat woken less than the
// hub's gather ago, holds the wake-up until then. It never blocks.
func (h *Hub) Wake(chats ...Chat) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range chats {
		w := h.watched[k]
		if w == nil || w.held {
			continue
		}
		if wait := w.woken.Add(h.gather).Sub(now); wait > 0 {
			w.held = true
			time.AfterFunc(wait, func() { h.release(k, w) })
			continue
		}
		w.wake(now)
	}
}

// release wakes the watchers of a chat whose wake-up was held.
func (h *Hub) release(k Chat, w *watched) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.held = false
	if h.watched[k] == w {
		w.wake(time.Now())
	}
}

func (w *watched) wake(now time.Time) {
	w.woken = now
	for ch := range w.chans {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Watched reports how many chats have watchers.
func (h *Hub) Watched() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watched)
}
