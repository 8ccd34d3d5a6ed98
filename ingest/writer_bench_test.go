package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/apptoken"
	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/ingest"
	"github.com/chatsys/chat/internal/testenv"
)

// BenchmarkWriter measures how fast the writers drain full queues into the
// event store: b.N MessageCreated events of 256 applications are published
// first, then the partitions are written by 1, 2 or 4 writers (as many
// `work` processes would: each its own connections, channels and batches)
// until all are stored. Reported as events/s, and the CPU the writers'
// process, the database server and the broker spent per event. The
// partition count comes from CHAT_PARTITIONS (4 when unset), the prefetch
// from CHAT_STORE_PREFETCH:
//
//	CHAT_PARTITIONS=16 go test ./ingest -run '^$' -bench Writer -benchtime 50000x
func BenchmarkWriter(b *testing.B) {
	for _, writers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) { benchmarkWriter(b, writers) })
	}
}

func benchmarkWriter(b *testing.B, writerCount int) {
	cfg := testenv.Config(b)
	ctx := context.Background()
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	if _, err := broker.DeclareTopology(ctx, cfg.AMQPURL, names); err != nil {
		b.Fatal(err)
	}
	amqpCfg := testenv.Watermill(b, cfg, 64)
	pub, err := broker.NewPublisher(amqpCfg, names, watermill.NopLogger{}, broker.PublisherConfig{Timeout: 10 * time.Second}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	codec := events.NewCodec()
	// Events of many applications, spread over the partitions.
	tokens := make([]string, 256)
	for i := range tokens {
		tokens[i] = apptoken.New()
	}
	body := fmt.Sprintf("%064d", 0)
	var (
		wg      sync.WaitGroup
		refused atomic.Int64
	)
	next := make(chan int)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				env, _ := events.New(events.MessageCreated{Token: tokens[i%len(tokens)], ChatNumber: 1, Number: int64(i/len(tokens) + 1), Body: body}, 1, "")
				r, _ := codec.Encode(env)
				if err := pub.Publish(ctx, r); err != nil {
					refused.Add(1)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	// The writers would wait for them for ever.
	if n := refused.Load(); n > 0 {
		b.Fatalf("%d of %d events not published: a partition's queue holds at most %d bytes (CHAT_STORE_QUEUE_BYTES); publish fewer (-benchtime) or over more partitions", n, b.N, names.QueueBound)
	}

	db := testenv.DB(b, cfg)
	store := eventstore.New(db, cfg.Namespace)
	reg := prometheus.NewRegistry()
	// Prefetch per partition as `chat work` gives it, from
	// CHAT_STORE_PREFETCH or its default (the test configuration's is
	// smaller).
	own, err := config.Load(os.LookupEnv)
	if err != nil {
		b.Fatal(err)
	}
	prefetch := ingest.PrefetchPerPartition(own.StorePrefetch, cfg.Partitions)
	ws := make([]*ingest.Writer, writerCount)
	for i := range ws {
		r := prometheus.Registerer(nil)
		if i == 0 {
			r = reg
		}
		ws[i] = ingest.NewWriter(ingest.WriterConfig{Prefetch: prefetch, AMQPURL: cfg.AMQPURL, Names: names, AMQP: amqpCfg, Store: store, Codec: codec, Log: slog.New(slog.DiscardHandler), Registerer: r})
		defer ws[i].Close()
	}
	runCtx, stop := context.WithCancel(ctx)
	var writers sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	cpu, dbCPU, brokerCPU := testenv.ProcessCPU(os.Getpid()), testenv.ProcessCPU(testenv.DatabasePID()), testenv.ProcessCPU(testenv.BrokerPID())
	for p := range cfg.Partitions {
		app := testenv.Appender(b, db, cfg.Namespace, p)
		w := ws[p%len(ws)]
		writers.Add(1)
		go func() { defer writers.Done(); _ = w.Run(runCtx, app, nil) }()
	}
	for {
		head, err := store.Total(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if head >= int64(b.N) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu, dbCPU, brokerCPU = testenv.ProcessCPU(os.Getpid())-cpu, testenv.ProcessCPU(testenv.DatabasePID())-dbCPU, testenv.ProcessCPU(testenv.BrokerPID())-brokerCPU
	b.StopTimer()
	stop()
	writers.Wait()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "writer_cpu_us/event")
	if dbCPU > 0 {
		b.ReportMetric(float64(dbCPU.Microseconds())/float64(b.N), "mysql_cpu_us/event")
	}
	if brokerCPU > 0 {
		b.ReportMetric(float64(brokerCPU.Microseconds())/float64(b.N), "broker_cpu_us/event")
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if h := mf.GetMetric()[0].GetHistogram(); h != nil && h.GetSampleCount() > 0 {
			b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount()), "mean_"+strings.TrimPrefix(mf.GetName(), "chat_eventstore_"))
		}
	}
}
