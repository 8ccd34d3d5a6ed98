package projections_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/ratelimit"
)

// strangeEvent is a type no fold knows.
type strangeEvent struct{ events.ChatCreated }

func (strangeEvent) EventType() string { return "Strange" }

// logOf is partition p's batch: an application and its two chats created,
// with a message and a rename between them, and, if strange, an event the
// fold does not know at the end.
func logOf(p int, token string, strange bool) []projections.Event {
	evs := []events.Event{
		events.ApplicationCreated{Token: token, Name: "a"},
		events.ChatCreated{Token: token, Number: 1, Name: "one"},
		events.MessageCreated{Token: token, ChatNumber: 1, Number: 1, Body: "x"},
		events.ApplicationRenamed{Token: token, Name: "b"},
		events.ChatCreated{Token: token, Number: 2, Name: "two"},
	}
	if strange {
		evs = append(evs, strangeEvent{})
	}
	out := make([]projections.Event, len(evs))
	for i, ev := range evs {
		out[i] = projections.Event{Partition: p, Position: int64(i + 1), Envelope: events.Envelope{
			EventID: uuid.New(), StreamVersion: 1, OccurredAt: time.Now(), Event: ev,
		}}
	}
	return out
}

// registered reports whether the command side takes an application and
// its two chats as existing (it hands out numbers in them only then).
func registered(t *testing.T, numbers *numbering.Store, token string) bool {
	t.Helper()
	ctx := context.Background()
	probes := []error{}
	_, err := numbers.ReserveChatNumber(ctx, token)
	probes = append(probes, err)
	for chat := int64(1); chat <= 2; chat++ {
		_, err := numbers.ReserveMessageNumber(ctx, token, chat)
		probes = append(probes, err)
	}
	known := 0
	for _, err := range probes {
		switch {
		case err == nil:
			known++
		case !errors.Is(err, commands.ErrUnknown):
			t.Fatal(err)
		}
	}
	if known != 0 && known != len(probes) {
		t.Fatalf("%s: %d of the application and its chats registered", token, known)
	}
	return known > 0
}

// TestRegistryAppliesPartitionsTogether: one Apply of batches of several
// partitions registers the creates of all of them and moves every
// partition's checkpoint; one batch holding an event the fold does not know
// fails it, and nothing is registered or moved. Handed to one Applier at
// once, the other batches are registered without that one.
func TestRegistryAppliesPartitionsTogether(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	rdb := testenv.Redis(t, cfg)
	numbers := numbering.New(rdb, cfg.Namespace)
	ctx := context.Background()
	n := int64(len(logOf(0, "", false)))
	for i, tc := range []struct {
		name string
		// strange is the partition whose batch holds an unknown event, or -1.
		strange int
		// together hands the batches to an Applier rather than to one Apply.
		together bool
		// failing are the calls (the one Apply, or each batch's) that fail.
		failing []int
		want    []int64 // the checkpoints after
	}{
		{name: "creates of three partitions", strange: -1, want: []int64{n, n, n, 0}},
		{name: "an unknown event in one", strange: 1, failing: []int{0}, want: []int64{0, 0, 0, 0}},
		{name: "an unknown event in one, by an Applier", strange: 1, together: true, failing: []int{1}, want: []int64{n, 0, n, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each case has checkpoints of its own, and applications of its
			// own in the namespace's Redis.
			ns := fmt.Sprintf("%s_c%d", cfg.Namespace, i)
			if _, err := mysqldb.Migrate(ctx, db, ns, partitions); err != nil {
				t.Fatal(err)
			}
			proj := projections.NewRegistry(numbers, ratelimit.NewStore(rdb, ns), db, ns)
			positions(t, proj) // as a runner starts: they exist from then on
			token := func(p int) string { return strings.Repeat(string(rune('a'+p)), 25) + string(rune('2'+i)) }
			var batches [][]projections.Event
			for p := range 3 {
				batches = append(batches, logOf(p, token(p), p == tc.strange))
			}

			var errs []error
			if tc.together {
				errs = applyTogether(proj, batches)
			} else {
				errs = []error{proj.Apply(ctx, batches)}
			}
			for j, err := range errs {
				if fails := slices.Contains(tc.failing, j); (err != nil) != fails {
					t.Errorf("call %d: %v, want an error %v", j, err, fails)
				}
			}
			if got := positions(t, proj); !slices.Equal(got, tc.want) {
				t.Errorf("checkpoints %v, want %v", got, tc.want)
			}
			for p := range partitions {
				if got, want := registered(t, numbers, token(p)), tc.want[p] == n; got != want {
					t.Errorf("partition %d: registered %v, want %v", p, got, want)
				}
			}
		})
	}
}

// applyTogether hands each batch to one Applier at once, as the runners of
// a process do, and returns each one's error. The last is held until the
// others queue behind it, so that these are applied together.
func applyTogether(proj projections.Projection, batches [][]projections.Event) []error {
	g := newGate(proj)
	applier := projections.NewApplier(g)
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	apply := func(i int) {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		errs[i] = applier.Apply(ctx, batches[i], 100)
	}
	held := len(batches) - 1
	wg.Add(1)
	go apply(held)
	<-g.entered
	for i := range held {
		wg.Add(1)
		go apply(i)
	}
	time.Sleep(300 * time.Millisecond)
	close(g.release)
	wg.Wait()
	return errs
}

// TestRegistryRecordsOverrides: a stored ApplicationLimitsSet becomes the
// application's override in Redis, the newest version kept whatever order
// the batches come in.
func TestRegistryRecordsOverrides(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	rdb := testenv.Redis(t, cfg)
	limits := ratelimit.NewStore(rdb, cfg.Namespace)
	proj := projections.NewRegistry(numbering.New(rdb, cfg.Namespace), limits, db, cfg.Namespace)
	positions(t, proj)
	token := strings.Repeat("o", 26)
	set := func(pos, version, commands int64) projections.Event {
		return projections.Event{Partition: 0, Position: pos, Envelope: events.Envelope{
			EventID: uuid.New(), StreamVersion: version, OccurredAt: time.Now(),
			Event: events.ApplicationLimitsSet{Token: token, Commands: &commands},
		}}
	}
	ctx := context.Background()
	for _, batch := range [][]projections.Event{{set(1, 3, 30)}, {set(2, 2, 20)}} {
		if err := proj.Apply(ctx, [][]projections.Event{batch}); err != nil {
			t.Fatal(err)
		}
	}
	o, ok, err := limits.Override(ctx, token)
	if err != nil || !ok || o.Version != 3 || o.Commands == nil || *o.Commands != 30 || o.Reads != nil {
		t.Fatalf("override after the batches: %+v %v %v; want version 3, commands 30", o, ok, err)
	}
}
