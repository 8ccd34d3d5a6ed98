package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/apptoken"
	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/ingest"
	"github.com/chatsys/chat/internal/testenv"
)

// BenchmarkWriter measures how fast the writer drains a full queue into the
// event store: b.N MessageCreated events are published first, then the
// writer runs until all are stored. Reported as events/s.
//
//	go test ./ingest -run '^$' -bench Writer -benchtime 100000x
func BenchmarkWriter(b *testing.B) {
	cfg := testenv.Config(b)
	ctx := context.Background()
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	if _, err := broker.DeclareTopology(ctx, cfg.AMQPURL, names); err != nil {
		b.Fatal(err)
	}
	amqpCfg := testenv.Watermill(b, cfg, 64, 2)
	pub, err := broker.NewPublisher(amqpCfg, names, watermill.NopLogger{}, 10*time.Second, nil)
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
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				env, _ := events.New(events.MessageCreated{Token: tokens[i%len(tokens)], ChatNumber: 1, Number: int64(i/len(tokens) + 1), Body: body}, 1, "")
				r, _ := codec.Encode(env)
				if err := pub.Publish(ctx, r); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		next <- i
	}
	close(next)
	wg.Wait()

	db := testenv.DB(b, cfg)
	store := eventstore.New(db, cfg.Namespace)
	reg := prometheus.NewRegistry()
	consumers := max(8, 128/cfg.Partitions)
	w := ingest.NewWriter(ingest.WriterConfig{Consumers: consumers, AMQP: amqpCfg, Store: store, Codec: codec, Log: slog.New(slog.DiscardHandler), Registerer: reg})
	defer w.Close()
	runCtx, stop := context.WithCancel(ctx)
	var writers sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for p := range cfg.Partitions {
		app := testenv.Appender(b, db, cfg.Namespace, p)
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
	b.StopTimer()
	stop()
	writers.Wait()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if h := mf.GetMetric()[0].GetHistogram(); h != nil && h.GetSampleCount() > 0 {
			b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount()), "mean_"+strings.TrimPrefix(mf.GetName(), "chat_eventstore_"))
		}
	}
}
