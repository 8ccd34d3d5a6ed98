package idempotency

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// Fingerprint identifies a request by what it asks for: the command's kind
// and its decoded fields (token, numbers, name or body), not the bytes that
// carried them, so JSON spacing or field order do not matter, and the seed's
// route and the nested one asking for the same change are the same request.
// Each field is length-prefixed, so ("ab", "c") and ("a", "bc") differ. Half
// a SHA-256 (128 bits) keeps the stored record small; telling a retry from
// another request under the same key needs no more.
func Fingerprint(kind string, fields ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range append([]string{kind}, fields...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// keyID names a key in Redis: a hash keeps the Redis key short whatever the
// client's key, and free of characters (such as braces) that Redis Cluster
// would read as a hash tag.
func keyID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}
