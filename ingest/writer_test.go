package ingest_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/ingest"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

// TestWriterServesItsLease: a writer that holds its partition's lease
// stores what waits in the queue, acknowledges it, and stops when told to;
// one whose lease was taken over stops on its own at its first append, with
// eventstore.ErrFenced, stores nothing and gives the message back to the
// queue for the new writer, even with nothing more arriving.
func TestWriterServesItsLease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stale  bool // the writer's lease is an older one
		stored int64
	}{
		{"lease held", false, 1},
		{"lease taken over", true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testenv.Config(t)
			ctx := context.Background()
			db := testenv.DB(t, cfg)
			// testenv declared the namespace's topology, and removes it.
			names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
			amqpCfg := testenv.Watermill(t, cfg, 1)
			pub, err := broker.NewPublisher(amqpCfg, names, watermill.NopLogger{}, broker.PublisherConfig{Timeout: 10 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			codec := events.NewCodec()
			env, err := events.New(events.MessageCreated{Token: "abcdefghijklmnopqrstuvwxyz", ChatNumber: 1, Number: 1, Body: "hello"}, 1, "")
			if err != nil {
				t.Fatal(err)
			}
			rec, err := codec.Encode(env)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, rec); err != nil {
				t.Fatal(err)
			}
			part := names.PartitionOf(rec)
			queue := names.StoreQueue(part)

			store := eventstore.New(db, cfg.Namespace)
			table := partition.NewTable(db, cfg.Namespace)
			lease, ok, err := table.Acquire(ctx, part, "test", time.Hour)
			if err != nil || !ok {
				t.Fatalf("take the lease: %v, %v", ok, err)
			}
			defer table.Release(context.Background(), lease)
			epoch := lease.Epoch
			if tc.stale {
				epoch-- // a writer of the lease before this one
			}
			w := ingest.NewWriter(ingest.WriterConfig{
				Prefetch: 8, AMQPURL: cfg.AMQPURL, Names: names, AMQP: amqpCfg,
				Store: store, Codec: codec, Log: testenv.Logger(t, slog.LevelError),
			})
			defer w.Close()

			serveCtx, stop := context.WithTimeout(ctx, time.Minute)
			defer stop()
			done := make(chan error, 1)
			go func() { done <- w.Serve(serveCtx, store.Appender(part, epoch), nil) }()

			if tc.stale {
				err := <-done
				if !errors.Is(err, eventstore.ErrFenced) || serveCtx.Err() != nil {
					t.Fatalf("Serve returned %v (its context: %v); want ErrFenced, on its own", err, serveCtx.Err())
				}
				testenv.Eventually(t, 30*time.Second, "the message back in the queue", func() bool {
					stats, err := broker.QueueStats(ctx, cfg.AMQPURL, queue)
					return err == nil && stats[0].Messages == 1
				})
			} else {
				testenv.Eventually(t, 30*time.Second, "the event stored and its message acknowledged", func() bool {
					total, err := store.Total(ctx)
					if err != nil || total != 1 {
						return false
					}
					stats, err := broker.QueueStats(ctx, cfg.AMQPURL, queue)
					return err == nil && stats[0].Messages == 0
				})
				stop()
				if err := <-done; err != nil {
					t.Fatalf("Serve after its context ended: %v", err)
				}
				// Its connection is closed: a message it had not
				// acknowledged would be back in the queue.
				if stats, err := broker.QueueStats(ctx, cfg.AMQPURL, queue); err != nil || stats[0].Messages != 0 {
					t.Errorf("after the writer stopped the queue holds %v (%v); want nothing", stats, err)
				}
			}
			if total, err := store.Total(ctx); err != nil || total != tc.stored {
				t.Errorf("the log holds %d events (%v); want %d", total, err, tc.stored)
			}
		})
	}
}
