package api

import (
	"cmp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StreamConfig configures the message streams and the long polls.
type StreamConfig struct {
	// Wakeups, if set, wake the streams of a chat when it changed; without
	// them streams only re-read every Recheck.
	Wakeups Wakeups
	// Max bounds the streams and long polls open at once; past it they are
	// refused with 503. DefaultMaxStreams when zero.
	Max int
	// Recheck is how often a stream reads its chat again without a wake-up,
	// the bound on the delay a lost wake-up causes. DefaultRecheck when zero.
	Recheck time.Duration
	// Heartbeat is how often an idle stream sends a comment, so that
	// proxies keep it open. DefaultHeartbeat when zero.
	Heartbeat time.Duration
	// WriteTimeout bounds each write of a stream: a client that stops
	// reading is closed, not buffered for. DefaultStreamWrite when zero.
	WriteTimeout time.Duration
	// Stopping, closed when the process shuts down, ends every stream and
	// long poll, so that their clients reconnect to another process.
	Stopping <-chan struct{}
	// Running, if set, counts the streams that outlive their request (a
	// stream on a connection of its own): the process waits for it at
	// shutdown, after Stopping.
	Running *sync.WaitGroup
}

// streams is the state and metrics the streams and long polls share.
type streams struct {
	slots              chan struct{}
	recheck, heartbeat time.Duration
	writeTimeout       time.Duration
	stopping           <-chan struct{}
	running            *sync.WaitGroup
	open               prometheus.Gauge
	delivered          prometheus.Counter
	latency            prometheus.Observer
}

func newStreams(c StreamConfig, reg prometheus.Registerer) streams {
	s := streams{
		slots:        make(chan struct{}, cmp.Or(c.Max, DefaultMaxStreams)),
		recheck:      cmp.Or(c.Recheck, DefaultRecheck),
		heartbeat:    cmp.Or(c.Heartbeat, DefaultHeartbeat),
		writeTimeout: cmp.Or(c.WriteTimeout, DefaultStreamWrite),
		stopping:     c.Stopping,
		running:      c.Running,
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chat_streams_open", Help: "Message streams and long polls open.",
		}),
	}
	delivered := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chat_stream_events_total", Help: "Messages (creates, edits and deletes) written to streams.",
	})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "chat_stream_delivery_seconds",
		Help:    "From a create or edit (its occurred-at, taken just before its 201) to its write to a live stream.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	})
	s.delivered, s.latency = delivered, latency
	reg.MustRegister(s.open, delivered, latency)
	return s
}
