package verify

import (
	"testing"

	"github.com/chatsys/chat/events"
)

// TestSlicesShareOutEvents: whatever the number of slices, one slice owns
// each event, the one that holds its entity, and a create concerns the
// slice that holds its parent too.
func TestSlicesShareOutEvents(t *testing.T) {
	t.Parallel()
	const token = "abcdefghijklmnopqrstuvwxyz"
	for _, tc := range []struct {
		stream string
		holds  func(slice) bool // of its own entity
		parent func(slice) bool // nil: none
	}{
		{events.ApplicationStream(token), func(s slice) bool { return s.hasApp(token) }, nil},
		{events.ChatStream(token, 7), func(s slice) bool { return s.hasChat(chatKey{token, 7}) }, func(s slice) bool { return s.hasApp(token) }},
		{events.MessageStream(token, 7, 12), func(s slice) bool { return s.hasMsg(msgKey{token, 7, 12}) }, func(s slice) bool { return s.hasChat(chatKey{token, 7}) }},
		{"msg:" + token + ":0:1", nil, nil}, // names no entity: the first slice owns it, every slice reads it
	} {
		for _, count := range []uint64{1, 2, 5, 64} {
			owners := 0
			for i := range count {
				s := slice{i, count}
				concerns, owns := s.concerns(tc.stream)
				if owns {
					owners++
				}
				if tc.holds == nil {
					if !concerns || owns != s.first() {
						t.Errorf("%s, slice %d of %d: concerns %v, owns %v", tc.stream, i, count, concerns, owns)
					}
					continue
				}
				if owns != tc.holds(s) || concerns != (owns || tc.parent != nil && tc.parent(s)) {
					t.Errorf("%s, slice %d of %d: concerns %v, owns %v", tc.stream, i, count, concerns, owns)
				}
			}
			if owners != 1 {
				t.Errorf("%s in %d slices: %d owners", tc.stream, count, owners)
			}
		}
	}
}

// TestSlicesSpreadMessages: the messages of one chat spread evenly over
// the slices, so a slice holds its share of even a single large chat.
func TestSlicesSpreadMessages(t *testing.T) {
	t.Parallel()
	const count, messages = 8, 80000
	var held [count]int
	for n := int64(1); n <= messages; n++ {
		for i := range uint64(count) {
			if (slice{i, count}).hasMsg(msgKey{"abcdefghijklmnopqrstuvwxyz", 1, n}) {
				held[i]++
			}
		}
	}
	for i, n := range held {
		if n < messages/count*9/10 || n > messages/count*11/10 {
			t.Errorf("slice %d holds %d of %d messages: %v", i, n, messages, held)
		}
	}
}
