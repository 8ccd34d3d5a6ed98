// Package rediscluster lets the same code run on one Redis server or on a
// Redis Cluster: it opens either from one URL and visits each master with
// the slots it serves (the slots themselves are package keyslot's).
package rediscluster

import (
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// IsClusterURL reports whether rawURL is go-redis's cluster form, which
// names the other seed nodes in addr parameters
// (redis://h1:7000?addr=h2:7001&addr=h3:7002).
func IsClusterURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Query().Has("addr")
}

// clusterReload is how old a cluster client's slot map may get before a
// command has it reloaded.
const clusterReload = time.Second

// Options tune a client; zero fields keep go-redis's defaults.
type Options struct {
	PoolSize    int // per node
	MaxRetries  int // -1: none
	DialTimeout time.Duration
}

// Open returns a client of a Redis Cluster for the cluster URL form, or of
// one server otherwise. It checks the URL but does not connect.
func Open(rawURL string, o Options) (redis.UniversalClient, error) {
	if IsClusterURL(rawURL) {
		opts, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis cluster URL: %w", err)
		}
		o.apply(&opts.PoolSize, &opts.MaxRetries, &opts.DialTimeout)
		if opts.ClusterStateReloadInterval == 0 {
			// A master that crashed answers nothing, so no MOVED tells the
			// client its replica took over: only a reload of the slot map
			// does, every minute by default, which kept commands failing
			// for as long. Reloaded at most every second (a CLUSTER SLOTS
			// when commands come), a crash costs about the failover itself.
			opts.ClusterStateReloadInterval = clusterReload
		}
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	o.apply(&opts.PoolSize, &opts.MaxRetries, &opts.DialTimeout)
	return redis.NewClient(opts), nil
}

func (o Options) apply(poolSize, maxRetries *int, dialTimeout *time.Duration) {
	if o.PoolSize != 0 {
		*poolSize = o.PoolSize
	}
	if o.MaxRetries != 0 {
		*maxRetries = o.MaxRetries
	}
	if o.DialTimeout != 0 {
		*dialTimeout = o.DialTimeout
	}
}

// Check returns the addresses rawURL names, or why it is not a Redis URL of
// either form.
func Check(rawURL string) ([]string, error) {
	if IsClusterURL(rawURL) {
		opts, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, err
		}
		return opts.Addrs, nil
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return []string{opts.Addr}, nil
}
