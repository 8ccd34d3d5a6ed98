package projections

import (
	"fmt"
	"slices"
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
			return nil, nil, ofBatch(fmt.Errorf("two batches of partition %d applied at once", b[0].Partition))
		}
		kept = append(kept, b)
		parts = append(parts, b[0].Partition)
	}
	slices.Sort(parts)
	return kept, parts, nil
}
