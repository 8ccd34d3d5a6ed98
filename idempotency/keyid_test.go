package idempotency

import (
	"strings"
	"testing"
)

func TestKeyID(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"a", "{tag}", strings.Repeat("k", 255)} {
		id := keyID(key)
		if len(id) != 32 || strings.ContainsAny(id, "{}") {
			t.Errorf("keyID(%q) = %q: want 32 hex digits", key, id)
		}
	}
	if keyID("a") == keyID("A") {
		t.Error("keys differing in case share an id")
	}
}
