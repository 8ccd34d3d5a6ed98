// Package keyslot computes Redis Cluster's key slots and a short hash tag
// for every slot, with no Redis client, so that the packages that only name
// keys (catalog, and through it the read side) depend on none.
package keyslot

import (
	"strconv"
	"strings"
	"sync"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// crc16 is CRC16-XMODEM (polynomial 0x1021, initial value 0), the checksum
// Redis Cluster maps keys to slots with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Slot is the hash slot of key: only its hash tag counts, the part between
// the first '{' and the next '}', when that part is not empty.
func Slot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	return int(crc16(key) % Slots)
}

// tags[slot] is a short string that hashes to slot.
var tags = sync.OnceValue(func() []string {
	t := make([]string, Slots)
	left := Slots
	for i := 0; left > 0; i++ {
		s := strconv.FormatInt(int64(i), 36)
		if slot := Slot(s); t[slot] == "" {
			t[slot] = s
			left--
		}
	}
	return t
})

// Tag returns a short hash tag whose keys land in slot.
func Tag(slot int) string { return tags()[slot] }
