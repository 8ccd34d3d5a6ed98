package projections

import (
	"reflect"
	"testing"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/numbering"
)

// TestRegistration: the registry's fold takes a batch's creates and deletes
// in log order, and stops at a type it does not know.
func TestRegistration(t *testing.T) {
	t.Parallel()
	const a, b = "aaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbb"
	batch := func(evs ...events.Event) []Event {
		out := make([]Event, len(evs))
		for i, ev := range evs {
			out[i] = Event{Position: int64(i + 1), Envelope: events.Envelope{Event: ev}}
		}
		return out
	}
	tests := []struct {
		name    string
		batch   []Event
		want    numbering.Registration
		wantErr bool
	}{
		{name: "nothing to register", batch: batch(
			events.ApplicationRenamed{Token: a, Name: "x"},
			events.ChatRenamed{Token: a, Number: 1, Name: "x"},
			events.MessageCreated{Token: a, ChatNumber: 1, Number: 1, Body: "x"},
			events.MessageEdited{Token: a, ChatNumber: 1, Number: 1, Body: "y"},
		)},
		{name: "creates in log order", batch: batch(
			events.ChatCreated{Token: a, Number: 2},
			events.ApplicationCreated{Token: b, Name: "b"},
			events.MessageCreated{Token: a, ChatNumber: 2, Number: 1, Body: "x"},
			events.ChatCreated{Token: b, Number: 1},
		), want: numbering.Registration{Apps: []string{b}, Chats: []numbering.Chat{{Token: a, Number: 2}, {Token: b, Number: 1}}}},
		{name: "deletes", batch: batch(
			events.MessageCreated{Token: a, ChatNumber: 2, Number: 1, Body: "x"},
			events.MessageDeleted{Token: a, ChatNumber: 2, Number: 1},
			events.MessageDeleted{Token: b, ChatNumber: 1, Number: 7},
		), want: numbering.Registration{Deleted: []numbering.Message{{Token: a, Chat: 2, Number: 1}, {Token: b, Chat: 1, Number: 7}}}},
		{name: "an unknown type stops the fold", batch: batch(
			events.ApplicationCreated{Token: a, Name: "a"},
			otherEvent{},
		), wantErr: true},
	}
	for _, tc := range tests {
		got, err := registration(tc.batch)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
