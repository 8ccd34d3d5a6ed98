package main

import (
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/wakeup"
)

// wakeChats wakes the streams of the chats whose messages a batch applied
// to the read tables created or edited, in this process and, through
// Redis, in every other: they are readable now.
func (p *process) wakeChats(batch []projections.Event) {
	if len(batch) > 0 {
		p.wakeups.Publish(batch[0].Partition, touched(batch))
	}
}

// touched lists, once each, the chats whose messages batch created,
// edited or deleted.
func touched(batch []projections.Event) []wakeup.Chat {
	seen := map[wakeup.Chat]bool{}
	var out []wakeup.Chat
	for _, e := range batch {
		var c wakeup.Chat
		switch ev := e.Event.(type) {
		case events.MessageCreated:
			c = wakeup.Chat{Token: ev.Token, Number: ev.ChatNumber}
		case events.MessageEdited:
			c = wakeup.Chat{Token: ev.Token, Number: ev.ChatNumber}
		case events.MessageDeleted:
			c = wakeup.Chat{Token: ev.Token, Number: ev.ChatNumber}
		default:
			continue
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}
