package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
)

// BenchmarkQuorumQueueFloor measures what RabbitMQ itself spends on a
// message of the event store's queues, with none of this project's code in
// the way: a bare client publishes b.N persistent messages of 450 bytes at
// a set pace with confirms, spread over the partitions' queues, and
// consumes them as the writer does (a prefetch, what waits acknowledged in
// one frame). It reports the broker's CPU per message, the floor under
// what a create costs when each batch message carries few records:
//
//	go test ./broker -run '^$' -bench QuorumQueueFloor -benchtime 10000x
//
// "apart" sends each message on its own, as a lane does when one record
// waits; "together" sends one message to each of 16 queues back to back,
// as lanes that are ready at once would.
func BenchmarkQuorumQueueFloor(b *testing.B) {
	cases := []struct {
		name   string
		queues int
		// burst messages go out back to back, each to the next queue.
		burst int
		rate  int
	}{
		{"1 queue/apart/1000 a second", 1, 1, 1000},
		{"16 queues/apart/1000 a second", 16, 1, 1000},
		{"16 queues/together/1000 a second", 16, 16, 1000},
		{"16 queues/apart/3000 a second", 16, 1, 3000},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cfg := testenv.ConfigOn(b, "", func(cfg *config.Config) { cfg.Partitions = c.queues })
			names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
			brokerPID := testenv.BrokerPID()
			if brokerPID == 0 {
				b.Skip("no single local RabbitMQ node to measure")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			conn, err := broker.Dial(ctx, cfg.AMQPURL, "floor")
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			consumed := make(chan int, 1024)
			var consumers sync.WaitGroup
			for _, q := range names.StoreQueues() {
				consumers.Add(1)
				go func() {
					defer consumers.Done()
					if err := drain(ctx, conn, q, consumed); err != nil && ctx.Err() == nil && !conn.IsClosed() {
						b.Error(err)
					}
				}()
			}
			ch, err := conn.Channel()
			if err != nil {
				b.Fatal(err)
			}
			if err := ch.Confirm(false); err != nil {
				b.Fatal(err)
			}
			body := make([]byte, 450)
			queues := names.StoreQueues()
			tick := time.NewTicker(time.Second * time.Duration(c.burst) / time.Duration(c.rate))
			defer tick.Stop()
			var confirms []*amqp.DeferredConfirmation

			b.ResetTimer()
			start, cpu := time.Now(), testenv.ProcessCPU(brokerPID)
			for sent := 0; sent < b.N; {
				<-tick.C
				for j := 0; j < c.burst && sent < b.N; j++ {
					dc, err := ch.PublishWithDeferredConfirm("", queues[sent%len(queues)], false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
					if err != nil {
						b.Fatal(err)
					}
					confirms = append(confirms, dc)
					sent++
				}
				confirms = settle(b, confirms)
			}
			for _, dc := range confirms {
				if ok, err := dc.WaitContext(ctx); !ok || err != nil {
					b.Fatalf("confirm: %v, %v", ok, err)
				}
			}
			for got := 0; got < b.N; {
				select {
				case n := <-consumed:
					got += n
				case <-ctx.Done():
					b.Fatalf("consumed %d of %d", got, b.N)
				}
			}
			elapsed, cpu := time.Since(start), testenv.ProcessCPU(brokerPID)-cpu
			b.StopTimer()
			// Closing the connection ends the consumers: a channel's close
			// would wait behind a delivery that nobody reads any more.
			cancel()
			conn.Close()
			consumers.Wait()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "messages/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "broker_cpu_us/message")
			b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "broker_cpu_%")
		})
	}
}

// settle drops the confirms that came back from the front of confirms,
// failing on a refusal.
func settle(b *testing.B, confirms []*amqp.DeferredConfirmation) []*amqp.DeferredConfirmation {
	for len(confirms) > 0 {
		select {
		case <-confirms[0].Done():
		default:
			return confirms
		}
		if !confirms[0].Acked() {
			b.Fatal("the broker refused a message")
		}
		confirms = confirms[1:]
	}
	return confirms
}

// drain consumes queue as the event store's writer does, and sends on
// consumed how many messages each acknowledgement covered.
func drain(ctx context.Context, conn *amqp.Connection, queue string, consumed chan<- int) error {
	// The connection's close closes the channel.
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Qos(64, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, queue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	for {
		var last amqp.Delivery
		n := 0
		select {
		case d, ok := <-deliveries:
			if !ok {
				return nil
			}
			last, n = d, 1
		case <-ctx.Done():
			return nil
		}
		for more := true; more; {
			select {
			case d, ok := <-deliveries:
				if !ok {
					return nil
				}
				last, n = d, n+1
			default:
				more = false
			}
		}
		if err := last.Ack(true); err != nil {
			return fmt.Errorf("ack %s: %w", queue, err)
		}
		select {
		case consumed <- n:
		case <-ctx.Done():
			return nil
		}
	}
}
