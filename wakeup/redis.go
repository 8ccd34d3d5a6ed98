package wakeup

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/internal/pause"
)

// Redis carries wake-ups between processes over Redis sharded pub/sub
// (SPUBLISH, SSUBSCRIBE): one channel per partition of the event log, so
// that on a Redis Cluster each lives on the master of its slot. A message
// names the chats a batch touched and the process that sent it, nothing
// of the messages. Delivery is at most once: a wake-up lost to a dropped
// connection or a failover only waits for the streams' re-read.
type Redis struct {
	rdb      redis.UniversalClient
	channels []string
	// origin names this process: a process skips its own wake-ups, as it
	// woke its hub directly.
	origin string
	hub    *Hub
	queue  chan string
	log    *slog.Logger

	published, received, dropped prometheus.Counter
}

// queueLen bounds the wake-ups waiting to be published; past it they are
// dropped (a bounded delay, not a loss).
const queueLen = 1024

// NewRedis returns the wake-ups of a namespace of partitions partitions,
// delivered to hub.
func NewRedis(rdb redis.UniversalClient, namespace string, partitions int, origin string, hub *Hub, log *slog.Logger, reg prometheus.Registerer) *Redis {
	names := catalog.New(namespace)
	r := &Redis{rdb: rdb, origin: origin, hub: hub, queue: make(chan string, queueLen), log: log.With("component", "wakeups")}
	for p := range partitions {
		r.channels = append(r.channels, names.WakeChannel(p))
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	r.published = counter("chat_wakeups_published_total", "Wake-ups (one per applied batch that changed messages) published to the other processes.")
	r.received = counter("chat_wakeups_received_total", "Wake-ups received from other processes.")
	r.dropped = counter("chat_wakeups_dropped_total", "Wake-ups not published because the queue was full or Redis failed; their streams wait for their re-read.")
	return r
}

// Publish wakes chats, of partition, in this process at once and queues
// their wake-up for the others. It never blocks.
func (r *Redis) Publish(partition int, chats []Chat) {
	if len(chats) == 0 {
		return
	}
	r.hub.Wake(chats...)
	var b strings.Builder
	b.WriteString(strconv.Itoa(partition) + " " + r.origin)
	for _, c := range chats {
		b.WriteString("\n" + c.String())
	}
	select {
	case r.queue <- b.String():
	default:
		r.dropped.Inc()
	}
}

// RunPublisher publishes the queued wake-ups until ctx ends.
func (r *Redis) RunPublisher(ctx context.Context) error {
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-r.queue:
			part, _, _ := strings.Cut(msg, " ")
			p, _ := strconv.Atoi(part)
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := r.rdb.SPublish(pctx, r.channels[p%len(r.channels)], msg).Err()
			cancel()
			switch {
			case err != nil && ctx.Err() == nil:
				r.dropped.Inc()
				if !failing {
					r.log.Warn("wake-ups not published; other processes' streams wait for their re-read", "err", err)
				}
				failing = true
			case err == nil:
				r.published.Inc()
				if failing {
					r.log.Info("wake-ups published again")
				}
				failing = false
			}
		}
	}
}

// Listen receives the other processes' wake-ups and wakes the hub's
// watchers, until ctx ends: one subscription per channel, since a Redis
// Cluster serves each channel from the master of its slot.
func (r *Redis) Listen(ctx context.Context) error {
	done := make(chan struct{})
	for _, ch := range r.channels {
		go func() {
			defer func() { done <- struct{}{} }()
			r.listen(ctx, ch)
		}()
	}
	for range r.channels {
		<-done
	}
	return nil
}

// listen holds one channel's subscription, subscribing again after a
// failure.
func (r *Redis) listen(ctx context.Context, channel string) {
	for ctx.Err() == nil {
		sub := r.rdb.SSubscribe(ctx, channel)
		// A blocked receive does not notice ctx ending; closing does.
		stop := context.AfterFunc(ctx, func() { _ = sub.Close() })
		err := r.receive(ctx, sub)
		stop()
		_ = sub.Close()
		if ctx.Err() == nil {
			r.log.Debug("wake-up subscription lost; subscribing again", "channel", channel, "err", err)
			_ = pause.For(ctx, 500*time.Millisecond)
		}
	}
}

func (r *Redis) receive(ctx context.Context, sub *redis.PubSub) error {
	for {
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		if chats, ok := r.parse(msg.Payload); ok {
			r.received.Inc()
			r.hub.Wake(chats...)
		}
	}
}

// parse reads a wake-up; ok is false for this process's own and for one
// it cannot read.
func (r *Redis) parse(payload string) ([]Chat, bool) {
	lines := strings.Split(payload, "\n")
	_, origin, _ := strings.Cut(lines[0], " ")
	if origin == r.origin {
		return nil, false
	}
	var out []Chat
	for _, l := range lines[1:] {
		token, num, ok := strings.Cut(l, "/")
		n, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil {
			continue
		}
		out = append(out, Chat{Token: token, Number: n})
	}
	return out, len(out) > 0
}
