package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/chatsys/chat/api"
	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/idempotency"
	"github.com/chatsys/chat/ingest"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/partition"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/ratelimit"
	"github.com/chatsys/chat/readmodel"
	"github.com/chatsys/chat/recovery"
	"github.com/chatsys/chat/rediscluster"
	"github.com/chatsys/chat/searchindex"
	"github.com/chatsys/chat/wakeup"
)

// namesOf are the broker's names of cfg's namespace with parts partitions.
func namesOf(cfg config.Config, parts int) broker.Names {
	names := broker.NamesFor(cfg.Namespace, parts)
	names.QueueBound = int64(cfg.StoreQueueBytes)
	return names
}

// warnClassic says which queues are kept in an older shape: a classic queue
// lives on one node, so losing that node loses it and what it holds; a queue
// without this release's length bound lets the read side lag for as long
// as an overload lasts.
func warnClassic(log *slog.Logger, names broker.Names) {
	const convert = "stop `chat serve`, let `chat work` drain it, stop `chat work` and run `chat migrate` to declare it anew"
	for q, kept := range names.Classic {
		if kept {
			log.Warn("queue is a classic queue, not replicated: "+convert, "queue", q)
		}
	}
	for q, kept := range names.Unbounded {
		if kept {
			log.Warn("queue has no length bound, so its backlog can grow without limit: "+convert, "queue", q)
		}
	}
	for q, kept := range names.Other {
		if kept {
			log.Warn("queue was declared with other arguments (another CHAT_STORE_QUEUE_BYTES?) and keeps them: "+convert, "queue", q)
		}
	}
}

// newRedis opens the one Redis server, or the Redis Cluster that a URL in
// the cluster form names.
func newRedis(cfg config.Config) (redis.UniversalClient, error) {
	rdb, err := rediscluster.Open(cfg.RedisURL, rediscluster.Options{PoolSize: 64})
	if err != nil {
		return nil, fmt.Errorf("CHAT_REDIS_URL: %w", err)
	}
	return rdb, nil
}

// newIdempotency returns the store of Idempotency-Keys. A key's lease
// outlasts its command, which gives up waiting for the broker's confirm after
// the publish timeout; a retry waits a moment for an attempt in flight before
// it is told to come back.
func newIdempotency(rdb redis.UniversalClient, cfg config.Config, reg prometheus.Registerer) *idempotency.Store {
	return idempotency.New(rdb, cfg.Namespace, idempotency.Options{
		Retention: 24 * time.Hour,
		Lease:     cfg.PublishTimeout + 3*time.Second,
		MaxKeys:   cfg.IdempotencyKeys,
		Wait:      2 * time.Second,
	}, reg)
}

func newElasticsearch(cfg config.Config) (*searchindex.Client, error) {
	es, err := searchindex.Open(searchindex.Config{
		URL: cfg.ElasticsearchURL,
		Transport: &http.Transport{
			MaxIdleConnsPerHost:   32,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("CHAT_ELASTICSEARCH_URL: %w", err)
	}
	return es, nil
}

// queueDepth tells how many events wait in each partition's queue.
func queueDepth(amqpURL string, names broker.Names) recovery.QueueDepth {
	return func(ctx context.Context) ([]int, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return broker.QueueDepths(ctx, amqpURL, names.StoreQueues()...)
	}
}

// openPool opens the process's MySQL pool. On MariaDB, a connection left
// idle inside a transaction for idleTransactions is ended, which releases
// its locks: a writer paused in the middle of an append (SIGSTOP, a long
// GC) would otherwise hold its partition's row, and the partition, until it
// resumes. No transaction of serve or work waits on anything but MySQL.
func openPool(ctx context.Context, cfg config.Config) (*sql.DB, error) {
	db, err := mysqldb.Open(cfg.MySQLDSN, cfg.MySQLMaxConns)
	if err != nil || !mysqldb.HasVariable(ctx, db, mysqldb.IdleTransactionTimeout) {
		return db, err
	}
	db.Close()
	return mysqldb.OpenWith(cfg.MySQLDSN, cfg.MySQLMaxConns, map[string]string{
		mysqldb.IdleTransactionTimeout: strconv.Itoa(int(idleTransactions.Seconds())),
	})
}

// idleTransactions is how long a transaction of serve or work may sit idle.
const idleTransactions = 10 * time.Second

// process is one running process: its HTTP server, its worker loops, and
// the connections they share.
type process struct {
	cfg     config.Config
	log     *slog.Logger
	reg     *prometheus.Registry
	db      *sql.DB
	rdb     redis.UniversalClient
	pub     *broker.Publisher
	handler http.Handler
	workers []worker
	// closers close what the workers share, after they stopped.
	closers []func() error
	// timeouts are the HTTP server's; tests shorten them.
	timeouts httpTimeouts
	// hub wakes the streams of the chats whose messages changed.
	hub *wakeup.Hub
	// stopping is closed when shutdown begins: it ends the streams.
	stopping chan struct{}
	// streams counts the streams carried on connections of their own,
	// which the HTTP server's shutdown does not wait for.
	streams sync.WaitGroup
	// wakeups carry the wake-ups to and from the other processes.
	wakeups *wakeup.Redis
	// serve is set when the process serves the API (and the web client).
	serve bool
}

// runProcess runs the API, the worker or both until ctx ends, then shuts
// down in order: stop taking requests and let those in flight finish, close
// the publisher, let the writer finish its batch and acknowledge, close.
func runProcess(ctx context.Context, cfg config.Config, log *slog.Logger, serve, work bool) error {
	p, err := newProcess(ctx, cfg, log, serve, work)
	if err != nil {
		return err
	}
	defer p.close()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	return p.run(ctx, ln)
}

// newProcess connects to what the process needs and builds its API (serve),
// its workers (work) or both.
func newProcess(ctx context.Context, cfg config.Config, log *slog.Logger, serve, work bool) (_ *process, err error) {
	p := &process{cfg: cfg, log: log, reg: prometheus.NewRegistry(), timeouts: defaultHTTPTimeouts,
		hub: wakeup.NewHub(wakeup.Gather), stopping: make(chan struct{})}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	p.wakeups = wakeup.NewRedis(p.rdb, cfg.Namespace, d.names.Partitions, workerID(), p.hub, log, p.reg)
	if serve {
		p.serve = true
		if err := p.buildAPI(d); err != nil {
			return nil, err
		}
	}
	if work {
		p.buildWorkers(d)
		if !serve {
			p.handler = api.NewOpsHandler(d.checks, p.reg, log)
		}
	}
	return p, nil
}

// deps is what the API and the workers share.
type deps struct {
	names   broker.Names
	amqp    wamqp.Config
	codec   *events.Codec
	numbers *numbering.Store
	limits  *ratelimit.Store
	es      *searchindex.Client
	// checks are the readiness checks both kinds of process answer.
	checks []api.Check
}

// connect opens MySQL (checking the namespace is migrated), Redis and the
// Elasticsearch client, and declares the broker's topology.
func (p *process) connect(ctx context.Context) (deps, error) {
	var (
		d   deps
		err error
	)
	checkCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if p.db, err = openPool(checkCtx, p.cfg); err != nil {
		return d, err
	}
	p.reg.MustRegister(collectors.NewDBStatsCollector(p.db, "chat"))
	if err := mysqldb.CheckMigrated(checkCtx, p.db, p.cfg.Namespace); err != nil {
		return d, fmt.Errorf("MySQL: %w", err)
	}
	// The partition count is fixed when the namespace is migrated: read once.
	parts, err := partition.NewTable(p.db, p.cfg.Namespace).Count(checkCtx)
	if err != nil {
		return d, fmt.Errorf("MySQL: %w", err)
	}
	if d.names, err = broker.DeclareTopology(checkCtx, p.cfg.AMQPURL, namesOf(p.cfg, parts)); err != nil {
		return d, err
	}
	warnClassic(p.log, d.names)
	if d.amqp, err = broker.WatermillConfig(p.cfg.AMQPURL, d.names, p.cfg.PublishChannels); err != nil {
		return d, fmt.Errorf("CHAT_AMQP_URL: %w", err)
	}
	d.codec = events.NewCodec()
	if p.rdb, err = newRedis(p.cfg); err != nil {
		return d, err
	}
	p.reg.MustRegister(newRedisPoolCollector(p.rdb))
	d.numbers = numbering.New(p.rdb, p.cfg.Namespace)
	d.limits = ratelimit.NewStore(p.rdb, p.cfg.Namespace)
	if d.es, err = newElasticsearch(p.cfg); err != nil {
		return d, err
	}
	d.checks = []api.Check{
		{Name: "mysql", Ping: p.db.PingContext},
		{Name: "elasticsearch", Optional: true, Ping: d.es.Ping},
	}
	return d, nil
}

// buildAPI connects the publisher and builds the HTTP API.
func (p *process) buildAPI(d deps) error {
	var err error
	if p.pub, err = broker.NewPublisher(d.amqp, d.names, broker.Logger(p.log), broker.PublisherConfig{Timeout: p.cfg.PublishTimeout, Channels: p.cfg.PublishChannels}, p.reg); err != nil {
		return err
	}
	checks := append(d.checks,
		api.Check{Name: "redis", Ping: d.numbers.Ping},
		// Optional: while some slots' numbering state is rebuilt, commands
		// in those slots answer 503 and everything else works, so the
		// process stays in its load balancer. Its answer is kept a second:
		// it reads every slot's epoch.
		api.Check{Name: "numbering", Ping: remembered(d.numbers.Ready, time.Second), Optional: true},
		api.Check{Name: "rabbitmq", Ping: p.pub.Ping},
		api.Check{Name: "backlog", Ping: p.pub.Backlog, Optional: true})
	queries := readmodel.NewQueries(p.db, p.cfg.Namespace)
	p.handler = api.NewHandler(api.Deps{
		Commands: commands.New(commands.Config{
			Numbering: d.numbers,
			Keys:      newIdempotency(p.rdb, p.cfg, p.reg),
			Publisher: commandPublisher{p.pub},
			Codec:     d.codec,
			Log:       p.log,
			// The Redis-loss recovery's settle counts on this bound.
			SendWithin: p.cfg.PublishTimeout,
			Overrides:  commandOverrides{d.limits},
		}),
		RateLimit:        apiLimiter{newLimiter(d.limits, p.cfg, p.log, p.reg)},
		Queries:          queries,
		Search:           readmodel.NewSearchQueries(d.es, queries, p.cfg.Namespace),
		Checks:           checks,
		Registry:         p.reg,
		Log:              p.log,
		MaxInFlight:      p.cfg.MaxInFlight,
		MaxReadsInFlight: p.cfg.MaxReadsInFlight,
		BodyTimeout:      p.cfg.BodyTimeout,
		Streams: api.StreamConfig{
			Wakeups: p.hub, Max: p.cfg.StreamMax, Recheck: p.cfg.StreamRecheck,
			WriteTimeout: p.cfg.StreamWriteTimeout, Stopping: p.stopping, Running: &p.streams,
		},
	})
	p.workers = append(p.workers, worker{"wake-up listener", p.wakeups.Listen})
	return nil
}

// buildWorkers builds the partition balancer, which runs the event store
// writer and the projectors of each partition this process holds, the
// numbering recovery and the dead-letter eraser.
func (p *process) buildWorkers(d deps) {
	store := eventstore.New(p.db, p.cfg.Namespace)
	// The runners share one watch (heads and pause flags, asked once for
	// all of them), one reader (reads at about the same time made in one
	// query) and, per projection, one applier.
	runnerCfg := projections.RunnerConfig{
		Store: store, Codec: d.codec, DB: p.db, Namespace: p.cfg.Namespace,
		Metrics: projections.NewRunnerMetrics(p.reg), Log: p.log,
		Watch:  projections.NewWatch(store, p.db, p.cfg.Namespace),
		Reader: projections.NewReader(store),
	}
	mysqlCfg := runnerCfg
	mysqlCfg.Applied = p.wakeChats
	search := projections.NewSearch(projections.SearchConfig{
		Index: d.es, DB: p.db, Store: store, Namespace: p.cfg.Namespace, Log: p.log, Registerer: p.reg,
	})
	projs := []projections.Projection{
		projections.NewMySQL(p.db, p.cfg.Namespace),
		search,
		projections.NewRegistry(d.numbers, d.limits, p.db, p.cfg.Namespace),
	}
	// One applier per projection, shared by the runners of every partition
	// this process holds, so that their batches commit together.
	appliers := make([]*projections.Applier, len(projs))
	for i, proj := range projs {
		appliers[i] = projections.NewApplier(proj)
	}
	writer := ingest.NewWriter(ingest.WriterConfig{
		Prefetch: ingest.PrefetchPerPartition(p.cfg.StorePrefetch, d.names.Partitions),
		AMQPURL:  p.cfg.AMQPURL, Names: d.names, AMQP: d.amqp,
		Store: store, Codec: d.codec, Log: p.log, Registerer: p.reg,
	})
	p.closers = append(p.closers, writer.Close)
	// A partition's work: its writer, and its projectors, woken by its
	// appends. All of it stops when the lease is lost or given up.
	work := func(ctx context.Context, l partition.Lease) error {
		runners := make([]*projections.Runner, len(projs))
		for i, proj := range projs {
			cfg := runnerCfg
			if i == 0 {
				cfg = mysqlCfg
			}
			cfg.Applier = appliers[i]
			runners[i] = projections.NewRunner(proj, l.Partition, cfg)
		}
		// The runners take what the writer stored from it, rather than
		// read it back from the log.
		notify := func(stored []eventstore.Stored) {
			for _, r := range runners {
				r.Offer(stored)
			}
		}
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error { return writer.Run(ctx, store.Appender(l.Partition, l.Epoch), notify) })
		for _, r := range runners {
			g.Go(func() error { return r.Run(ctx) })
		}
		return g.Wait()
	}
	balancer := partition.NewBalancer(partition.BalancerConfig{
		Table: partition.NewTable(p.db, p.cfg.Namespace),
		Owner: workerID(),
		Work:  work, Log: p.log, Registerer: p.reg,
	})
	rebuild := recovery.New(recovery.Config{
		Numbers: d.numbers, Store: store, DB: p.db, Depth: queueDepth(p.cfg.AMQPURL, d.names),
		Namespace: p.cfg.Namespace, Log: p.log, Registerer: p.reg, Overrides: d.limits,
		// No event is sent later than a publish timeout after its number
		// was reserved (commands.Config.SendWithin); a second more lets
		// what was sent reach its queue.
		Settle: p.cfg.PublishTimeout + time.Second,
	})
	eraser := &ingest.DeadEraser{AMQPURL: p.cfg.AMQPURL, Names: d.names, Store: store, Log: p.log}
	p.workers = append(p.workers, worker{"dead-letter eraser", eraser.Run})
	p.workers = append(p.workers, worker{"partition balancer", balancer.Run},
		worker{"numbering recovery", rebuild.Run}, worker{"wake-up publisher", p.wakeups.RunPublisher})
	// The queues are the namespace's, not the process's: the processes that
	// run the writer export their depths.
	p.reg.MustRegister(newQueueCollector(p.cfg.AMQPURL, d.names, 2*time.Second, 5*time.Second))
}

// workerID names this process among the workers: host, pid and a random
// suffix, so that a restarted process is a new worker.
func workerID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

func (p *process) run(ctx context.Context, ln net.Listener) error {
	srv := p.httpServer()
	if p.cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(p.cfg.DebugAddr, p.log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(p.limitConns(ln)) }()
	p.log.Info("listening", "addr", ln.Addr().String(), "namespace", p.cfg.Namespace)

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	running := newRunning()
	for _, w := range p.workers {
		running.start(workCtx, w, p.log)
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	p.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	// Streams would hold the shutdown until its timeout: they end now, and
	// their clients reconnect to another process.
	close(p.stopping)
	if shutErr := srv.Shutdown(shutdownCtx); shutErr != nil {
		p.log.Error("HTTP shutdown", "err", shutErr)
	}
	if !waitFor(shutdownCtx, &p.streams) {
		p.log.Error("streams did not end in time")
	}
	if p.pub != nil {
		_ = p.pub.Close()
		p.pub = nil
	}
	stopWork()
	if !running.wait(shutdownCtx) {
		p.log.Error("workers did not stop in time", "running", running.names())
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (p *process) close() {
	for _, c := range p.closers {
		_ = c()
	}
	p.closers = nil
	if p.pub != nil {
		_ = p.pub.Close()
	}
	if p.rdb != nil {
		_ = p.rdb.Close()
	}
	if p.db != nil {
		_ = p.db.Close()
	}
}
