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
}

// watched is a chat's watchers and when it was last woken.
type watched struct {
	chans map[chan struct{}]struct{}
	woken time.Time
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{watched: map[Chat]*watched{}} }

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

// Woken is when the chat was last woken (zero if it never was while
// watched): a read begun after it sees what every wake-up so far announced.
func (h *Hub) Woken(token string, chat int64) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.watched[Chat{token, chat}]; w != nil {
		return w.woken
	}
	return time.Time{}
}

// Wake wakes the watchers of chats. It never blocks.
func (h *Hub) Wake(chats ...Chat) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range chats {
		w := h.watched[k]
		if w == nil {
			continue
		}
		w.woken = now
		for ch := range w.chans {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Watched reports how many chats have watchers.
func (h *Hub) Watched() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watched)
}
