package verify

import (
	"fmt"
	"hash/fnv"
	"io"

	"github.com/chatsys/chat/events"
)

// entity is what the log says of an application, a chat or a message.
type entity struct {
	text    uint64 // hash of the name or body
	version int64
	created bool
	count   int64 // chats of an application, messages of a chat
	deleted bool  // a message deleted
	seen    bool  // a row of the read tables stands for it
}

type chatKey struct {
	token string
	chat  int64
}

type msgKey struct {
	token        string
	chat, number int64
}

// fold is what the log says of the entities of one slice of a partition.
type fold struct {
	apps  map[string]*entity
	chats map[chatKey]*entity
	msgs  map[msgKey]*entity
	// deleted is the messages deleted in the chats the fold holds: each
	// counts in its chat's messages only if its create is stored too,
	// which the fold learns at its end (uncount), as a create may come
	// before or after its delete.
	deleted map[msgKey]bool
}

func newFold() *fold {
	return &fold{map[string]*entity{}, map[chatKey]*entity{}, map[msgKey]*entity{}, map[msgKey]bool{}}
}

func hash(s string) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, s)
	return h.Sum64()
}

func get[K comparable](m map[K]*entity, k K) *entity {
	e := m[k]
	if e == nil {
		e = &entity{}
		m[k] = e
	}
	return e
}

// set applies a named or bodied event: the newest version wins. A
// deleted message keeps no body, whatever its events say (they are
// erased, unless stored before erasure existed).
func (e *entity) set(text string, version int64) {
	if version > e.version {
		e.text, e.version = hash(text), version
	}
	if e.deleted {
		e.text = hash("")
	}
}

// apply folds one event into every entity it concerns.
func (f *fold) apply(env events.Envelope) error { return f.applyIn(env, slice{}) }

// applyIn folds one event into the entities of s it concerns: its own, and
// the parent whose count a create adds to. A type the fold does not know is
// an error: a verification that skipped it would vouch for tables it never
// checked.
func (f *fold) applyIn(env events.Envelope, s slice) error {
	v := env.StreamVersion
	switch ev := env.Event.(type) {
	case events.ApplicationCreated:
		if s.hasApp(ev.Token) {
			a := get(f.apps, ev.Token)
			a.created = true
			a.set(ev.Name, v)
		}
	case events.ApplicationRenamed:
		if s.hasApp(ev.Token) {
			get(f.apps, ev.Token).set(ev.Name, v)
		}
	case events.ChatCreated:
		if k := (chatKey{ev.Token, ev.Number}); s.hasChat(k) {
			c := get(f.chats, k)
			c.created = true
			c.set(ev.Name, v)
		}
		if s.hasApp(ev.Token) {
			get(f.apps, ev.Token).count++
		}
	case events.ChatRenamed:
		if k := (chatKey{ev.Token, ev.Number}); s.hasChat(k) {
			get(f.chats, k).set(ev.Name, v)
		}
	case events.MessageCreated:
		if k := (msgKey{ev.Token, ev.ChatNumber, ev.Number}); s.hasMsg(k) {
			m := get(f.msgs, k)
			m.created = true
			m.set(ev.Body, v)
		}
		if k := (chatKey{ev.Token, ev.ChatNumber}); s.hasChat(k) {
			get(f.chats, k).count++
		}
	case events.MessageEdited:
		if k := (msgKey{ev.Token, ev.ChatNumber, ev.Number}); s.hasMsg(k) {
			get(f.msgs, k).set(ev.Body, v)
		}
	case events.MessageDeleted:
		k := msgKey{ev.Token, ev.ChatNumber, ev.Number}
		if s.hasMsg(k) {
			m := get(f.msgs, k)
			m.deleted = true
			m.set("", v)
		}
		if s.hasChat(chatKey{ev.Token, ev.ChatNumber}) {
			f.deleted[k] = true
		}
	case events.ApplicationLimitsSet:
		// Not in the read tables: nothing to verify there.
	default:
		return fmt.Errorf("type %s is not handled by verify", env.Event.EventType())
	}
	return nil
}
