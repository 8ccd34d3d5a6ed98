package verify

import (
	"github.com/cespare/xxhash/v2"

	"github.com/chatsys/chat/events"
)

// slice is the part of a partition's entities that one fold holds: those
// whose key hashes to index among count, or all of them when count is 0 or
// 1. A partition of more events than a fold may hold is verified a slice at
// a time, so memory does not grow with the log. Every message, chat and
// application hashes on its own key, so a slice holds about its share
// whatever the sizes of chats and applications.
type slice struct{ index, count uint64 }

func (s slice) all() bool                      { return s.count <= 1 }
func (s slice) holds(h uint64) bool            { return s.all() || h%s.count == s.index }
func (s slice) hasApp(token string) bool       { return s.all() || s.holds(keyHash(token, 0, 0)) }
func (s slice) hasChat(k chatKey) bool         { return s.all() || s.holds(keyHash(k.token, k.chat, 0)) }
func (s slice) hasMsg(k msgKey) bool           { return s.all() || s.holds(keyHash(k.token, k.chat, k.number)) }
func (s slice) first() bool                    { return s.index == 0 }
func (s slice) ofStream(st events.Stream) bool { return s.holds(keyHash(st.Token, st.Chat, st.Number)) }

// concerns reports, from its stream id alone, whether an event may touch an
// entity of s (its own, or the parent whose count a create adds to), so
// that no other event is decoded; and whether s owns it, to report it or
// count it once: the slice of its own entity owns it, and the first slice
// an event of a stream id that names none (which every slice decodes).
func (s slice) concerns(streamID string) (concerns, owns bool) {
	if s.all() {
		return true, true
	}
	st, ok := events.ParseStream(streamID)
	if !ok {
		return true, s.first()
	}
	owns = s.ofStream(st)
	switch st.Kind {
	case "chat":
		return owns || s.hasApp(st.Token), owns
	case "msg":
		return owns || s.hasChat(chatKey{st.Token, st.Chat}), owns
	}
	return owns, owns
}

// keyHash hashes an entity's key: an application's (chat and number 0), a
// chat's (number 0) or a message's.
func keyHash(token string, chat, number int64) uint64 {
	h := xxhash.Sum64String(token)
	h = mix(h ^ uint64(chat))
	return mix(h ^ uint64(number))
}

// mix is SplitMix64's finalizer: every bit of x moves every bit of the
// result, so consecutive numbers spread over the slices.
func mix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
