package partition

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestOfFollowsKeyspaceRanges(t *testing.T) {
	for _, n := range []int{1, 2, 3, 16, 64, 1024} {
		counts := make([]int, n)
		for i := range 20000 {
			token := fmt.Sprintf("tok%07d", i)
			p := Of(token, n)
			if p < 0 || p >= n {
				t.Fatalf("Of(%q, %d) = %d", token, n, p)
			}
			counts[p]++
			// The keyspace id as Vitess lays it out: little-endian hash bytes.
			var ksid [8]byte
			binary.LittleEndian.PutUint64(ksid[:], xxhash.Sum64String(token))
			k := binary.BigEndian.Uint64(ksid[:])
			lo := rangeStart(p, n)
			if k < lo || (p+1 < n && k >= rangeStart(p+1, n)) {
				t.Fatalf("token %q: keyspace id %x outside partition %d of %d", token, k, p, n)
			}
		}
		if n > 1 && n <= 64 {
			for p, c := range counts {
				if c < 20000/n/2 {
					t.Errorf("n=%d: partition %d got %d of 20000 tokens", n, p, c)
				}
			}
		}
	}
}

// rangeStart is the first keyspace id of partition p of n: ceil(p·2^64/n).
func rangeStart(p, n int) uint64 {
	if p == 0 {
		return 0
	}
	// p·2^64/n = p·(2^64/n) + p·(2^64 mod n)/n, computed without overflow.
	q, r := ^uint64(0)/uint64(n), ^uint64(0)%uint64(n)+1 // 2^64 = q·n + r
	if r == uint64(n) {
		q, r = q+1, 0
	}
	whole := uint64(p) * q
	frac := uint64(p) * r
	start := whole + frac/uint64(n)
	if frac%uint64(n) != 0 {
		start++
	}
	return start
}
