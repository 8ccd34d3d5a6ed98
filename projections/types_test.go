package projections

import (
	"testing"

	"github.com/chatsys/chat/events"
)

// otherEvent is a type no fold knows.
type otherEvent struct{ events.ChatCreated }

func (otherEvent) EventType() string { return "Other" }

// TestMySQLFoldHandlesEveryType walks the codec's registry: a type added
// there without a branch in the fold fails here, not silently in production.
func TestMySQLFoldHandlesEveryType(t *testing.T) {
	t.Parallel()
	for _, ev := range events.NewCodec().Examples() {
		var p plan
		if err := p.add(Event{Position: 1, Envelope: events.Envelope{Event: ev, StreamVersion: 1}}); err != nil {
			t.Errorf("%s: %v", ev.EventType(), err)
		}
	}
	var p plan
	if err := p.add(Event{Position: 1, Envelope: events.Envelope{Event: otherEvent{}, StreamVersion: 1}}); err == nil {
		t.Error("an unknown event type was folded without an error")
	}
}

// TestSearchFoldHandlesEveryType is the same walk through the search fold.
func TestSearchFoldHandlesEveryType(t *testing.T) {
	t.Parallel()
	for _, ev := range events.NewCodec().Examples() {
		if _, _, _, err := messageDoc(ev); err != nil {
			t.Errorf("%s: %v", ev.EventType(), err)
		}
	}
	if _, _, _, err := messageDoc(otherEvent{}); err == nil {
		t.Error("an unknown event type was folded without an error")
	}
}

// TestRegistryFoldHandlesEveryType is the same walk through the registry's
// fold.
func TestRegistryFoldHandlesEveryType(t *testing.T) {
	t.Parallel()
	for _, ev := range events.NewCodec().Examples() {
		if _, err := registration([]Event{{Position: 1, Envelope: events.Envelope{Event: ev}}}); err != nil {
			t.Errorf("%s: %v", ev.EventType(), err)
		}
	}
	if _, err := registration([]Event{{Position: 1, Envelope: events.Envelope{Event: otherEvent{}}}}); err == nil {
		t.Error("an unknown event type was folded without an error")
	}
}
