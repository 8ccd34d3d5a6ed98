package events

import (
	"encoding/json"
	"fmt"

	"github.com/chatsys/chat/internal/plainjson"
)

// Erase returns ev with its words taken out, if it is an event of a message
// that says any (a create or an edit), and whether it is one. The event
// keeps its place in its stream and what the log's readers count on (which
// message, which version): only the body goes, and the event says so.
func Erase(ev Event) (Event, bool) {
	switch e := ev.(type) {
	case MessageCreated:
		e.Body, e.Erased = "", true
		return e, true
	case MessageEdited:
		e.Body, e.Erased = "", true
		return e, true
	}
	return ev, false
}

// Erasable reports whether events of this type carry a message's words.
func Erasable(eventType string) bool {
	return eventType == TypeMessageCreated || eventType == TypeMessageEdited
}

// EraseRecord returns r with its message's words taken out (Erase), as the
// codec would write the erased event; a record of another type comes back
// as it is. It reads the payload alone, so it needs no codec.
func EraseRecord(r Record) (Record, error) {
	if !Erasable(r.Type) {
		return r, nil
	}
	var m MessageEdited
	if err := json.Unmarshal(r.Data, &m); err != nil {
		return r, fmt.Errorf("%w: %s payload: %v", ErrUndecodable, r.Type, err)
	}
	m.Body, m.Erased = "", true
	var (
		data []byte
		err  error
	)
	if r.Type == TypeMessageCreated {
		data, err = plainjson.Marshal(MessageCreated(m))
	} else {
		data, err = plainjson.Marshal(m)
	}
	if err != nil {
		return r, err
	}
	r.Data = data
	return r, nil
}
