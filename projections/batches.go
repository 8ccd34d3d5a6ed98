package projections

import (
	"fmt"
	"slices"
	"strings"

	"github.com/chatsys/chat/internal/groupcommit"
)

// distinct returns the batches that hold events and their partitions in
// ascending order. Two batches of one partition are refused, lest their
// events be folded twice: applied one at a time, the second skips what the
// first applied.
func distinct(batches [][]Event) ([][]Event, []int, error) {
	kept := make([][]Event, 0, len(batches))
	parts := make([]int, 0, len(batches))
	for _, b := range batches {
		if len(b) == 0 {
			continue
		}
		if slices.Contains(parts, b[0].Partition) {
			return nil, nil, groupcommit.Split(fmt.Errorf("two batches of partition %d applied at once", b[0].Partition))
		}
		kept = append(kept, b)
		parts = append(parts, b[0].Partition)
	}
	slices.Sort(parts)
	return kept, parts, nil
}

// placeholders is n comma-separated placeholders.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// anys is ints as statement arguments.
func anys(ints []int) []any {
	out := make([]any, len(ints))
	for i, v := range ints {
		out[i] = v
	}
	return out
}
