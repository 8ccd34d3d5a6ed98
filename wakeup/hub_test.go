package wakeup_test

import (
	"testing"

	"github.com/chatsys/chat/wakeup"
)

// TestHubWakesOnlyTheChatsWatchers: a wake-up reaches the watchers of its
// chat and no other, coalesces, and stops reaching a stopped watch.
func TestHubWakesOnlyTheChatsWatchers(t *testing.T) {
	t.Parallel()
	h := wakeup.NewHub()
	a1, stopA1 := h.Watch("a", 1)
	a2, stopA2 := h.Watch("a", 2)
	defer stopA2()
	b1, stopB1 := h.Watch("a", 1)
	defer stopB1()
	h.Wake(wakeup.Chat{Token: "a", Number: 1}, wakeup.Chat{Token: "a", Number: 1})
	tests := []struct {
		name string
		ch   <-chan struct{}
		want int
	}{{"first watcher of a/1", a1, 1}, {"second watcher of a/1", b1, 1}, {"watcher of a/2", a2, 0}}
	for _, tt := range tests {
		got := 0
		for len(tt.ch) > 0 {
			<-tt.ch
			got++
		}
		if got != tt.want {
			t.Errorf("%s: %d wake-ups, want %d", tt.name, got, tt.want)
		}
	}
	stopA1()
	h.Wake(wakeup.Chat{Token: "a", Number: 1})
	if len(a1) != 0 {
		t.Error("a stopped watch was woken")
	}
	if got := h.Watched(); got != 2 {
		t.Errorf("%d chats watched, want 2", got)
	}
}
