package rediscluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/keyslot"
)

// Master is one Redis master: the one server, or a cluster's master with
// the slots it serves by its own account.
type Master struct {
	Addr   string
	Slots  []int
	Client *redis.Client
}

// ForEachMaster calls fn for each master, concurrently on a cluster.
func ForEachMaster(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, Master) error) error {
	switch c := rdb.(type) {
	case *redis.Client:
		all := make([]int, keyslot.Slots)
		for i := range all {
			all[i] = i
		}
		return fn(ctx, Master{Addr: c.Options().Addr, Slots: all, Client: c})
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			slots, err := ownSlots(ctx, node)
			if err != nil {
				return fmt.Errorf("%s: %w", node.Options().Addr, err)
			}
			return fn(ctx, Master{Addr: node.Options().Addr, Slots: slots, Client: node})
		})
	}
	return fmt.Errorf("redis client %T is neither a single server's nor a cluster's", rdb)
}

// ownSlots asks a node which slots it serves: the "myself" line of CLUSTER
// NODES, read on the node itself, so that the slots and whatever else is
// read there agree even while the cluster changes.
func ownSlots(ctx context.Context, node *redis.Client) ([]int, error) {
	nodes, err := node.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "myself") {
			continue
		}
		if !strings.Contains(f[2], "master") {
			return nil, nil // demoted since the client's view was taken
		}
		return parseSlots(f[8:])
	}
	return nil, fmt.Errorf("CLUSTER NODES has no line for the node itself")
}

// parseSlots reads ranges such as "0-5460" and "7000"; migrating and
// importing entries ("[42->-id]") are not yet the node's own.
func parseSlots(ranges []string) ([]int, error) {
	var slots []int
	for _, r := range ranges {
		if strings.HasPrefix(r, "[") {
			continue
		}
		lo, hi, isRange := strings.Cut(r, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 0 || b >= keyslot.Slots || a > b {
			return nil, fmt.Errorf("slot range %q", r)
		}
		for s := a; s <= b; s++ {
			slots = append(slots, s)
		}
	}
	return slots, nil
}
