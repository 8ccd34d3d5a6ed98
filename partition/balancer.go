package partition

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/internal/pause"
)

// Work runs a partition for the holder of its lease until ctx ends (the
// lease was lost, given up, or the process stops). It returns early only
// when it cannot go on; the balancer then gives the lease up.
type Work func(ctx context.Context, l Lease) error

// BalancerConfig is what a balancer needs.
type BalancerConfig struct {
	Table *Table
	// Owner names this process among the workers; unique per process run.
	Owner string
	// TTL is how long a lease lasts unless renewed: how soon a dead
	// worker's partitions are taken over. 5 s when zero.
	TTL time.Duration
	// Work runs one partition.
	Work Work
	Log  *slog.Logger
	// Registerer (optional) gets the balancer's metrics.
	Registerer prometheus.Registerer
}

// Balancer takes this process's share of the partitions, the count divided
// by the live workers (rounded up), runs each partition it holds, renews
// their leases, gives up what exceeds its share when workers join, and
// takes over the partitions of workers that died once their leases run out.
type Balancer struct {
	cfg      BalancerConfig
	interval time.Duration
	log      *slog.Logger

	count   prometheus.Gauge
	writer  *prometheus.GaugeVec
	active  prometheus.Gauge
	running map[int]*unit
	// stopped receives the units that ended, from their goroutines.
	stopped chan *unit
	// failures counts ticks that failed in a row, to log an outage once.
	failures int
}

type unit struct {
	lease    Lease
	cancel   context.CancelFunc
	stopping bool
	err      error
}

// NewBalancer returns a balancer.
func NewBalancer(cfg BalancerConfig) *Balancer {
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Second
	}
	b := &Balancer{
		cfg:      cfg,
		interval: cfg.TTL / 5,
		log:      cfg.Log.With("component", "partitions", "worker", cfg.Owner),
		count: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chat_eventstore_partitions", Help: "Partitions of the namespace's event log.",
		}),
		writer: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chat_eventstore_partition_writer", Help: "1 while this process holds the partition's writer lease (and writes and projects it).",
		}, []string{"partition"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chat_eventstore_writer_active", Help: "1 while this process writes at least one partition.",
		}),
		running: map[int]*unit{},
		stopped: make(chan *unit),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(b.count, b.writer, b.active)
	}
	return b
}

// Run balances until ctx ends; then it stops every partition's work, gives
// the leases up and leaves, so that the other workers take over at once.
func (b *Balancer) Run(ctx context.Context) error {
	var n int
	for {
		var err error
		if n, err = b.cfg.Table.Count(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		b.log.Error("partitions", "err", err)
		_ = pause.For(ctx, b.cfg.TTL)
	}
	b.count.Set(float64(n))
	if err := b.cfg.Table.ForgetGone(ctx); err != nil {
		b.log.Warn("forget workers gone for long", "err", err)
	}
	ticker := time.NewTicker(b.interval)
	defer ticker.Stop()
	for {
		b.tick(ctx, n)
		select {
		case <-ctx.Done():
			b.stopAll()
			return nil
		case u := <-b.stopped:
			b.ended(u)
		case <-ticker.C:
		}
	}
}

// tick renews, drops what was lost, and moves toward this worker's share.
func (b *Balancer) tick(ctx context.Context, n int) {
	opCtx, cancel := context.WithTimeout(ctx, b.cfg.TTL)
	defer cancel()
	live, err := b.cfg.Table.Heartbeat(opCtx, b.cfg.Owner, b.cfg.TTL)
	var held map[int]Lease
	if err == nil {
		mine := make([]int, 0, len(b.running))
		for p := range b.running {
			mine = append(mine, p)
		}
		held, err = b.cfg.Table.Renew(opCtx, b.cfg.Owner, mine, b.cfg.TTL)
	}
	if err != nil {
		b.failed(err)
		return
	}
	if b.failures > 0 {
		b.log.Info("partition leases renewed again", "failed_attempts", b.failures)
		b.failures = 0
	}
	owned := 0
	for p, u := range b.running {
		if l, ok := held[p]; !ok || l.Epoch != u.lease.Epoch {
			if !u.stopping {
				b.log.Warn("partition lease lost to another worker; stopping its work", "partition", p)
				b.stop(u)
			}
			continue
		}
		if !u.stopping {
			owned++
		}
	}
	share := (n + live - 1) / live
	for p, u := range b.running {
		if owned <= share {
			break
		}
		if !u.stopping {
			b.log.Info("giving a partition up to balance the workers", "partition", p, "workers", live, "share", share)
			b.stop(u)
			owned--
		}
	}
	if owned >= share {
		return
	}
	// Failing to take a partition is no reason to stop the others: it is
	// tried again at the next tick.
	all, err := b.cfg.Table.List(opCtx)
	if err != nil {
		b.log.Warn("list partitions", "err", err)
		return
	}
	// Start the search at a point of this worker's own, so that workers
	// that take partitions at once mostly try different ones.
	start := int(hash(b.cfg.Owner) % uint64(len(all)))
	for i := range all {
		s := all[(start+i)%len(all)]
		if owned >= share {
			break
		}
		if _, mine := b.running[s.Partition]; mine || (s.Owner != "" && s.Left > 0) {
			continue
		}
		l, ok, err := b.cfg.Table.Acquire(opCtx, s.Partition, b.cfg.Owner, b.cfg.TTL)
		if err != nil {
			b.log.Warn("take a partition", "partition", s.Partition, "err", err)
			return
		}
		if ok {
			b.start(ctx, l)
			owned++
		}
	}
}

func (b *Balancer) failed(err error) {
	b.failures++
	if b.failures == 1 || b.failures%60 == 0 {
		b.log.Error("partition leases could not be renewed; the partitions go to other workers if this lasts", "attempts", b.failures, "err", err)
	}
	// Past the lease, another worker may hold them: stop writing.
	if time.Duration(b.failures)*b.interval >= b.cfg.TTL {
		for _, u := range b.running {
			if !u.stopping {
				b.stop(u)
			}
		}
	}
}

func (b *Balancer) start(ctx context.Context, l Lease) {
	workCtx, cancel := context.WithCancel(ctx)
	u := &unit{lease: l, cancel: cancel}
	b.running[l.Partition] = u
	b.writer.WithLabelValues(strconv.Itoa(l.Partition)).Set(1)
	b.active.Set(1)
	b.log.Info("writing partition", "partition", l.Partition, "epoch", l.Epoch)
	go func() {
		u.err = b.cfg.Work(workCtx, l)
		b.stopped <- u
	}()
}

func (b *Balancer) stop(u *unit) {
	u.stopping = true
	u.cancel()
}

// ended handles a unit whose work returned: its lease is given up.
func (b *Balancer) ended(u *unit) {
	p := u.lease.Partition
	if !u.stopping && u.err != nil && !errors.Is(u.err, context.Canceled) {
		b.log.Error("partition work stopped", "partition", p, "err", u.err)
	}
	u.cancel()
	delete(b.running, p)
	b.writer.WithLabelValues(strconv.Itoa(p)).Set(0)
	if len(b.running) == 0 {
		b.active.Set(0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.TTL)
	defer cancel()
	if err := b.cfg.Table.Release(ctx, u.lease); err != nil {
		b.log.Warn("give a partition lease up", "partition", p, "err", err)
	}
}

// stopAll stops every partition's work, waits for it, gives the leases up
// and leaves.
func (b *Balancer) stopAll() {
	for _, u := range b.running {
		if !u.stopping {
			b.stop(u)
		}
	}
	for len(b.running) > 0 {
		b.ended(<-b.stopped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.TTL)
	defer cancel()
	_ = b.cfg.Table.Leave(ctx, b.cfg.Owner)
	b.log.Info("partitions given up")
}

// hash is FNV-1a, to spread the workers' starting points.
func hash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
