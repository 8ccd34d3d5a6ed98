// Package partition splits the event log: which partition an application's
// events go to, and the table of partitions with their writers' leases.
package partition

import (
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Default is the number of partitions a new namespace gets.
const Default = 16

// Max is the most partitions a namespace may have.
const Max = 1024

// Of returns the partition of an application's token among n: the token's
// 64-bit hash, read as a point of [0, 2^64), falls in one of n equal ranges.
// The hash is the keyspace id that Vitess's xxhash vindex gives the token
// (xxHash64, little-endian bytes, compared as a big-endian number), so a
// keyspace sharded by token on that vindex, with shard boundaries on the
// ranges' edges, keeps a partition's rows and its applications' read rows
// in one shard.
func Of(token string, n int) int {
	if n <= 1 {
		return 0
	}
	k := bits.ReverseBytes64(xxhash.Sum64String(token))
	hi, _ := bits.Mul64(k, uint64(n))
	return int(hi)
}
