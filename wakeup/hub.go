// Package wakeup carries the wake-ups of chats whose messages changed: a
// process's hub of watchers per chat, and the Redis pub/sub that brings
// every process the wake-ups of the others. A wake-up carries no data; its
// watchers re-read the chat after their cursors.
package wakeup

import (
	"strconv"
	"sync"
)

// Chat names a chat: its application's token and its number.
type Chat struct {
	Token  string
	Number int64
}

func (c Chat) String() string { return c.Token + "/" + strconv.FormatInt(c.Number, 10) }

// Hub holds the watchers of each chat in one process.
type Hub struct {
	mu       sync.Mutex
	watchers map[Chat]map[chan struct{}]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{watchers: map[Chat]map[chan struct{}]struct{}{}} }

// Watch returns a channel that receives when the chat is woken, and a func
// that stops the watch. Wake-ups coalesce: the channel holds at most one.
func (h *Hub) Watch(token string, chat int64) (<-chan struct{}, func()) {
	k, ch := Chat{token, chat}, make(chan struct{}, 1)
	h.mu.Lock()
	set := h.watchers[k]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		h.watchers[k] = set
	}
	set[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(set, ch)
		if len(set) == 0 && h.watchers[k] != nil && len(h.watchers[k]) == 0 {
			delete(h.watchers, k)
		}
	}
}

// Wake wakes the watchers of chats. It never blocks.
func (h *Hub) Wake(chats ...Chat) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range chats {
		for ch := range h.watchers[k] {
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
	return len(h.watchers)
}
