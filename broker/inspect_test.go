package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/internal/testenv"
)

func TestNamesQueues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		partitions int
		want       []string
	}{
		{1, []string{"ns.eventstore.dead", "ns.eventstore"}},
		{3, []string{"ns.eventstore.dead", "ns.eventstore", "ns.eventstore.1", "ns.eventstore.2"}},
	} {
		if got := broker.NamesFor("ns", tc.partitions).Queues(); !slices.Equal(got, tc.want) {
			t.Errorf("%d partitions: queues %v, want %v", tc.partitions, got, tc.want)
		}
	}
}

func TestRefusalOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want broker.Refusal
	}{
		{nil, broker.NotRefused},
		{errors.New("connection refused"), broker.NotRefused},
		{fmt.Errorf("connect to RabbitMQ: %w", amqp.ErrVhost), broker.RefusedVhost},
		{&amqp.Error{Code: amqp.NotAllowed}, broker.RefusedVhost},
		{fmt.Errorf("connect to RabbitMQ: %w", &amqp.Error{Code: amqp.AccessRefused}), broker.RefusedLogin},
	}
	for _, tc := range tests {
		if got := broker.RefusalOf(tc.err); got != tc.want {
			t.Errorf("RefusalOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestInspector reports a namespace's topology against what DeclareTopology
// declares: as declared, missing, of an older shape, or an exchange of
// another type.
func TestInspector(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	names.QueueBound = int64(cfg.StoreQueueBytes)
	in, err := broker.Inspect(context.Background(), cfg.AMQPURL, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if product, version := in.Server(); product != "RabbitMQ" || version == "" {
		t.Errorf("server %q %q", product, version)
	}
	if ex, err := in.Exchange(names); err != nil || !ex.Exists || ex.Differs != "" {
		t.Errorf("exchange: %+v, %v; want it as declared", ex, err)
	}
	for _, q := range names.Queues() {
		want := broker.QueueFound{Name: q, Shape: broker.ShapeCurrent, Bound: names.QueueBound}
		if q == names.DeadStore {
			want.Bound = 0
		}
		if got, err := in.Queue(names, q); err != nil || got != want {
			t.Errorf("queue %s: %+v, %v; want %+v", q, got, err, want)
		}
	}

	testenv.ClassicQueues(t, cfg)
	if got, err := in.Queue(names, names.Store); err != nil || got.Shape != broker.ShapeClassic || got.Bound != 0 {
		t.Errorf("classic queue: %+v, %v", got, err)
	}

	other := broker.NamesFor(cfg.Namespace+"_other", 1)
	if ex, err := in.Exchange(other); err != nil || ex.Exists {
		t.Errorf("exchange of another namespace: %+v, %v; want none", ex, err)
	}
	if got, err := in.Queue(other, other.Store); err != nil || got.Shape != broker.ShapeMissing {
		t.Errorf("queue of another namespace: %+v, %v; want missing", got, err)
	}
	conn := dial(t, cfg.AMQPURL)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ch.ExchangeDelete(other.Exchange, false, false) }()
	if err := ch.ExchangeDeclare(other.Exchange, "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if ex, err := in.Exchange(other); err != nil || !ex.Exists || !strings.Contains(ex.Differs, "PRECONDITION_FAILED") {
		t.Errorf("a fanout exchange: %+v, %v; want it found to differ", ex, err)
	}
}
