package main

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/broker"
)

// queueCollector exports the depth of the event store's queue and of its
// dead-letter queue. It asks RabbitMQ when scraped, over a short-lived
// connection bounded by timeout, and answers from what it learnt for ttl
// afterwards, so that frequent or concurrent scrapes (several Prometheus
// servers, a dashboard refreshing) cost the broker at most one look per ttl.
// When RabbitMQ cannot be asked, the depths are left out rather than
// reported stale, and chat_queue_up is 0.
type queueCollector struct {
	amqpURL string
	names   broker.Names
	timeout time.Duration
	ttl     time.Duration

	messages *prometheus.Desc
	up       *prometheus.Desc

	mu      sync.Mutex // held while asking, so that concurrent scrapes ask once
	asked   time.Time
	store   float64
	dead    float64
	healthy bool
}

func newQueueCollector(amqpURL string, names broker.Names, timeout, ttl time.Duration) *queueCollector {
	return &queueCollector{
		amqpURL: amqpURL,
		names:   names,
		timeout: timeout,
		ttl:     ttl,
		messages: prometheus.NewDesc("chat_queue_messages",
			"Messages ready in the event store's queue (store) and parked in its dead-letter queue (dead), as RabbitMQ reported them at most a few seconds ago. Anything in dead needs a person.",
			[]string{"queue"}, nil),
		up: prometheus.NewDesc("chat_queue_up",
			"1 when the last query of RabbitMQ for the queue depths succeeded, 0 when it failed (and chat_queue_messages is left out).",
			nil, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	ch <- c.up
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.asked.IsZero() || time.Since(c.asked) >= c.ttl {
		c.refresh()
	}
	if !c.healthy {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, c.store, "store")
	ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, c.dead, "dead")
}

// refresh asks RabbitMQ; a failure is remembered for ttl too, so that a
// broker that is down is not dialled on every scrape.
func (c *queueCollector) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	stats, err := broker.QueueStats(ctx, c.amqpURL, c.names.Store, c.names.DeadStore)
	c.asked = time.Now()
	c.healthy = err == nil
	if err == nil {
		c.store, c.dead = float64(stats[0].Messages), float64(stats[1].Messages)
	}
}

// redisPoolCollector exports go-redis's connection pool figures.
type redisPoolCollector struct {
	client  redis.UniversalClient
	maxSize float64

	hits, misses, timeouts, waits, waitSeconds, stale *prometheus.Desc
	conns, idle, max                                  *prometheus.Desc
}

func newRedisPoolCollector(client redis.UniversalClient) *redisPoolCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("chat_redis_pool_"+name, help, nil, nil)
	}
	return &redisPoolCollector{
		client:      client,
		maxSize:     float64(poolSize(client)),
		hits:        desc("hits_total", "Times a free connection was found in the Redis pool."),
		misses:      desc("misses_total", "Times no free connection was in the Redis pool (a new one was dialled or waited for)."),
		timeouts:    desc("timeouts_total", "Times waiting for a Redis pool connection timed out."),
		waits:       desc("waits_total", "Times a command waited for a Redis pool connection because the pool was full."),
		waitSeconds: desc("wait_seconds_total", "Time spent waiting for a Redis pool connection."),
		stale:       desc("stale_connections_total", "Stale connections removed from the Redis pool."),
		conns:       desc("connections", "Connections open in the Redis pool."),
		idle:        desc("idle_connections", "Idle connections in the Redis pool."),
		max:         desc("max_connections", "The Redis pool's size limit (on a cluster, of each node's pool)."),
	}
}

func (c *redisPoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.timeouts, c.waits, c.waitSeconds, c.stale, c.conns, c.idle, c.max} {
		ch <- d
	}
}

func (c *redisPoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.client.PoolStats()
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(c.hits, float64(s.Hits))
	counter(c.misses, float64(s.Misses))
	counter(c.timeouts, float64(s.Timeouts))
	counter(c.waits, float64(s.WaitCount))
	counter(c.waitSeconds, time.Duration(s.WaitDurationNs).Seconds())
	counter(c.stale, float64(s.StaleConns))
	gauge(c.conns, float64(s.TotalConns))
	gauge(c.idle, float64(s.IdleConns))
	gauge(c.max, c.maxSize)
}

// poolSize is the pool's limit: the one server's, or on a cluster each
// node's, as each node has a pool of its own.
func poolSize(client redis.UniversalClient) int {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().PoolSize
	case *redis.ClusterClient:
		return c.Options().PoolSize
	}
	return 0
}
