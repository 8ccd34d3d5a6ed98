package wakeup_test

import (
	"testing"
	"time"

	"github.com/chatsys/chat/wakeup"
)

// TestHubWakesOnlyTheChatsWatchers: a wake-up reaches the watchers of its
// chat and no other, coalesces, and stops reaching a stopped watch.
func TestHubWakesOnlyTheChatsWatchers(t *testing.T) {
	t.Parallel()
	h := wakeup.NewHub(0)
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

// TestHubGathersABusyChatsWakeUps: a chat woken again within the gather is
// woken once more when it has passed, not at once and not once per wake-up;
// a chat after a quiet spell is woken at once.
func TestHubGathersABusyChatsWakeUps(t *testing.T) {
	t.Parallel()
	const gather = 300 * time.Millisecond
	h := wakeup.NewHub(gather)
	ch, stop := h.Watch("a", 1)
	defer stop()
	a1 := wakeup.Chat{Token: "a", Number: 1}
	h.Wake(a1)
	if len(ch) != 1 {
		t.Fatal("the first wake-up was held")
	}
	<-ch
	first := time.Now()
	h.Wake(a1)
	h.Wake(a1)
	if len(ch) != 0 {
		t.Fatal("a wake-up within the gather went at once")
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the held wake-up never came")
	}
	if waited := time.Since(first); waited < gather {
		t.Errorf("the held wake-up came %s after the first, within the gather of %s", waited, gather)
	}
	time.Sleep(50 * time.Millisecond)
	if len(ch) != 0 {
		t.Error("the held wake-ups came more than once")
	}
	time.Sleep(gather)
	h.Wake(a1)
	if len(ch) != 1 {
		t.Error("a wake-up after a quiet spell was held")
	}
}
