package commands

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/google/uuid"
)

// Outcome is what a command's attempt produced: what it reserved, and the
// id and time of the event it built. It is all an Idempotency-Key's record
// keeps; a retry's answer is rebuilt from it and the retried request.
type Outcome struct {
	EventID uuid.UUID
	Token   string // a new application's token
	Number  int64  // a new chat's or message's number
	Version int64  // the event's stream version
	At      time.Time
}

// ClaimState is what a claim of an Idempotency-Key found.
type ClaimState int

const (
	// ClaimFresh: nothing was published under the key; run the command.
	ClaimFresh ClaimState = iota
	// ClaimReplay: an attempt's event was confirmed; answer its outcome.
	ClaimReplay
	// ClaimResume: an attempt built and may have published its event, and
	// its outcome is unknown; publish the same event again (the event store
	// keeps an event id once) and answer its outcome once confirmed.
	ClaimResume
)

func (s ClaimState) String() string {
	switch s {
	case ClaimReplay:
		return "replayed"
	case ClaimResume:
		return "resumed"
	}
	return "fresh"
}

// Claim is an attempt's hold on an Idempotency-Key.
type Claim struct {
	State ClaimState
	// Outcome is what an earlier attempt saved (replayed or resumed), or
	// what this one saved.
	Outcome Outcome
	// Scope and Key are the claimed key and the application it belongs to
	// ("" for new applications); Owner is the attempt's mark on the record,
	// which the key records set so as to tell a later owner from this one.
	Scope, Key, Owner string
}

// fingerprint identifies a request by what it asks for: the command's kind
// and its decoded fields (token, numbers, name or body), not the bytes that
// carried them, so JSON spacing or field order do not matter, and the seed's
// route and the nested one asking for the same change are the same request.
// Each field is length-prefixed, so ("ab", "c") and ("a", "bc") differ. Half
// a SHA-256 (128 bits) keeps the stored record small; telling a retry from
// another request under the same key needs no more.
func fingerprint(kind string, fields ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range append([]string{kind}, fields...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
