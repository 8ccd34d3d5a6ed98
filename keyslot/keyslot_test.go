package keyslot

import "testing"

// The expected slots are Redis's own answers to CLUSTER KEYSLOT.
func TestSlot(t *testing.T) {
	for _, c := range []struct {
		key  string
		want int
	}{
		{"123456789", 12739}, // the CRC16-XMODEM check value 0x31C3
		{"foo", 12182},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"foo{}{bar}", 8363}, // an empty tag does not count: the whole key hashes
		{"foo{{bar}}zap", 4015},
		{"foo{bar}{zap}", 5061},
	} {
		if got := Slot(c.key); got != c.want {
			t.Errorf("Slot(%q) = %d, want %d", c.key, got, c.want)
		}
	}
}

func TestTagCoversEverySlot(t *testing.T) {
	longest := 0
	for slot := 0; slot < Slots; slot++ {
		tag := Tag(slot)
		if got := Slot("x:{" + tag + "}"); got != slot {
			t.Fatalf("Tag(%d) = %q lands in slot %d", slot, tag, got)
		}
		longest = max(longest, len(tag))
	}
	if longest > 4 {
		t.Errorf("the longest tag has %d characters; want short tags", longest)
	}
}
