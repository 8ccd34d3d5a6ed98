package verify

import (
	"testing"

	"github.com/chatsys/chat/events"
)

type otherEvent struct{ events.ChatCreated }

func (otherEvent) EventType() string { return "Other" }

// TestFoldHandlesEveryType walks the codec's registry: a type added there
// without a branch in verify's fold fails here.
func TestFoldHandlesEveryType(t *testing.T) {
	t.Parallel()
	f := newFold()
	for _, ev := range events.NewCodec().Examples() {
		if err := f.apply(events.Envelope{Event: ev, StreamVersion: 1}); err != nil {
			t.Errorf("%s: %v", ev.EventType(), err)
		}
	}
	if err := f.apply(events.Envelope{Event: otherEvent{}, StreamVersion: 1}); err == nil {
		t.Error("an unknown event type was folded without an error")
	}
}
