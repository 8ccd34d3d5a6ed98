// Package recovery rebuilds the command side's Redis state from the event
// store when Redis has lost it, so that no number that got a 201 is ever
// handed out again.
package recovery

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/pause"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/numbering"
)

// QueueDepth reports how many events wait, ready for delivery, in each
// partition's queue, by partition.
type QueueDepth func(ctx context.Context) ([]int, error)

// Recovery watches the numbering epoch and rebuilds the state when it is
// missing (Redis lost its data) or stale (Redis restarted or failed over).
type Recovery struct {
	numbers   *numbering.Store
	store     *eventstore.Store
	db        *sql.DB
	depth     QueueDepth
	lockName  string
	namespace string
	settle    time.Duration
	log       *slog.Logger
	interval  time.Duration
	// lostSlots is the number of slots whose state is lost and not rebuilt.
	lostSlots prometheus.Gauge
	// overrides (optional) gets the rate-limit overrides back.
	overrides Overrides
}

// Config is what a recovery needs.
type Config struct {
	Numbers *numbering.Store
	Store   *eventstore.Store
	// DB holds the lock by which one process at a time watches.
	DB *sql.DB
	// Depth tells whether events still wait in the store's queue.
	Depth     QueueDepth
	Namespace string
	// Settle must exceed the longest time a command can take from reserving
	// a number to its publish being confirmed or given up.
	Settle time.Duration
	Log    *slog.Logger
	// Registerer (optional) gets the recovery's metric.
	Registerer prometheus.Registerer
	// Overrides (optional) gets the lost slots' rate-limit overrides back.
	Overrides Overrides
}

// New returns a recovery.
func New(cfg Config) *Recovery {
	lost := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "chat_numbering_lost_slots",
		Help: "Redis hash slots whose numbering state is lost (or was sealed by another Redis run) and not rebuilt yet; creates of their applications are refused meanwhile. Set by the process that watches the numbering state.",
	})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(lost)
	}
	return &Recovery{
		lostSlots: lost,
		numbers:   cfg.Numbers,
		store:     cfg.Store,
		db:        cfg.DB,
		depth:     cfg.Depth,
		lockName:  catalog.New(cfg.Namespace).NumberingLock(),
		namespace: cfg.Namespace,
		settle:    cfg.Settle,
		log:       cfg.Log.With("component", "numbering-recovery"),
		interval:  time.Second,
		overrides: cfg.Overrides,
	}
}

// Initialize seals a brand-new namespace at once: with no event stored and
// none queued, there is nothing to rebuild. It reports whether the namespace
// is sealed (false: events exist, or some slot was sealed by a Redis run
// that is gone, so a recovery must run).
func Initialize(ctx context.Context, numbers *numbering.Store, store *eventstore.Store, depth QueueDepth) (bool, error) {
	masters, err := numbers.Masters(ctx)
	if err != nil {
		return false, err
	}
	missing := 0
	for _, m := range masters {
		if len(m.Stale()) > 0 {
			return false, nil
		}
		missing += len(m.Missing())
	}
	if missing == 0 {
		return true, nil
	}
	head, err := store.Total(ctx)
	if err != nil {
		return false, err
	}
	depths, err := depth(ctx)
	if err != nil {
		return false, err
	}
	queued := 0
	for _, d := range depths {
		queued += d
	}
	if head != 0 || queued != 0 {
		return false, nil
	}
	for _, m := range masters {
		if err := numbers.Seal(ctx, m.Missing(), m.RunID); err != nil {
			return false, err
		}
	}
	return true, nil
}

// Run watches until ctx ends. One process at a time watches (a named lock).
func (r *Recovery) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		lock, err := mysqldb.AcquireLock(ctx, r.db, r.lockName)
		if err != nil {
			_ = pause.For(ctx, r.interval)
			continue
		}
		err = r.watch(ctx)
		lock.Release()
		if ctx.Err() == nil {
			r.log.Error("numbering recovery stopped; retrying", "err", err)
			_ = pause.For(ctx, r.interval)
		}
	}
	return nil
}

// Lost is what a master has lost: the slots whose state must be rebuilt and
// the run id that seals them afterwards.
type Lost struct {
	Addr  string
	RunID string
	Slots []int
}

func (r *Recovery) watch(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	// Redis being unreachable is logged when it starts and when it ends,
	// not at every look.
	unreachable := false
	for {
		masters, err := r.numbers.Masters(ctx)
		if (err != nil) != unreachable {
			unreachable = err != nil
			if unreachable {
				r.log.Warn("cannot read the numbering epochs; watching until Redis answers", "err", err)
			} else {
				r.log.Info("numbering epochs readable again")
			}
		}
		var lost []Lost
		for _, m := range masters {
			if stale := m.Stale(); len(stale) > 0 {
				// The master restarted or a replica took over: it may have
				// lost the last writes, and its counters may be behind.
				r.log.Warn("a Redis master changed under the numbering state; rebuilding its slots", "addr", m.Addr, "run_id", m.RunID, "slots", len(stale))
				if err := r.numbers.Invalidate(ctx, stale); err != nil {
					return err
				}
			}
			if affected := append(m.Stale(), m.Missing()...); len(affected) > 0 {
				lost = append(lost, Lost{Addr: m.Addr, RunID: m.RunID, Slots: affected})
			}
		}
		n := 0
		for _, l := range lost {
			n += len(l.Slots)
		}
		r.lostSlots.Set(float64(n))
		if len(lost) > 0 {
			if err := r.Rebuild(ctx, lost); err != nil {
				return err
			}
			r.lostSlots.Set(0)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Rebuild restores the numbering state of the lost slots from the event
// store: the applications whose token hashes to one of them. Their epochs
// must be missing already, so that no number in them is handed out
// meanwhile; the other slots keep serving.
func (r *Recovery) Rebuild(ctx context.Context, lost []Lost) error {
	start := time.Now()
	if ok, err := Initialize(ctx, r.numbers, r.store, r.depth); err != nil || ok {
		if ok {
			r.log.Info("numbering state sealed for a new namespace")
		}
		return err
	}
	var slots []int
	for _, l := range lost {
		slots = append(slots, l.Slots...)
	}
	r.log.Warn("numbering state lost: refusing new numbers in the lost slots until they are rebuilt from the event store", "slots", len(slots), "settle", r.settle)
	// Commands that reserved a number before the loss finish (or give up)
	// within settle; then every confirmed event is in the queue or stored.
	_ = pause.For(ctx, r.settle)
	if err := r.drained(ctx); err != nil {
		return err
	}
	if err := r.numbers.Clear(ctx, slots); err != nil {
		return err
	}
	inLost := make(map[int]bool, len(slots))
	for _, s := range slots {
		inLost[s] = true
	}
	names := catalog.New(r.namespace)
	st, err := fold(ctx, r.store, func(token string) bool { return inLost[names.AppSlot(token)] })
	if err != nil {
		return fmt.Errorf("fold the event store: %w", err)
	}
	restore := r.numbers.NewRestore()
	if err := st.write(ctx, restore); err != nil {
		return err
	}
	if err := restore.Commit(ctx); err != nil {
		return err
	}
	// Before the seal, so that commands resume under their overrides.
	nOverrides, err := r.restoreOverrides(ctx, st)
	if err != nil {
		return err
	}
	for _, l := range lost {
		if err := r.numbers.Seal(ctx, l.Slots, l.RunID); err != nil {
			return err
		}
	}
	r.log.Info("numbering state rebuilt from the event store", "slots", len(slots), "applications", len(st.apps), "chats", len(st.chats), "messages", st.messages, "rate_limit_overrides", nOverrides, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// drained waits until every event confirmed before the loss is stored. No
// command of the lost slots publishes any more (their scripts refuse), and
// the settle has let those in flight finish, so each such event is stored
// or waits in its partition's queue, or is in a writer's hands. Once a
// partition's queue has been seen with nothing ready, all of them have been
// delivered; one interval later the batches in flight have committed. The
// partitions are watched apart: under load each queue is empty at moments,
// while all of them at once, with the log not growing, may never be.
func (r *Recovery) drained(ctx context.Context) error {
	var emptied []bool
	for {
		depths, err := r.depth(ctx)
		if err != nil {
			return err
		}
		if emptied == nil {
			emptied = make([]bool, len(depths))
		}
		waiting, queued := 0, 0
		for p, d := range depths {
			if !emptied[p] {
				waiting++
				queued += d
			}
		}
		if waiting == 0 {
			return nil
		}
		r.log.Info("waiting for the partitions' queues to drain", "partitions", waiting, "queued", queued)
		for p, d := range depths {
			emptied[p] = emptied[p] || d == 0
		}
		if err := pause.For(ctx, r.interval); err != nil {
			return err
		}
	}
}

type chatKey struct {
	token string
	chat  int64
}

type chatState struct {
	version int64
	numbers []bool // numbers[n] is true when message n is stored
	last    int64
}

type state struct {
	apps     map[string]*[2]int64 // version, last chat number
	chats    map[chatKey]*chatState
	edits    map[chatKey]map[int64]int64
	deleted  []numbering.Message
	messages int
}

// fold reads the stream heads of the applications keep selects.
func fold(ctx context.Context, store *eventstore.Store, keep func(token string) bool) (*state, error) {
	st := &state{apps: map[string]*[2]int64{}, chats: map[chatKey]*chatState{}, edits: map[chatKey]map[int64]int64{}}
	chat := func(k chatKey) *chatState {
		c := st.chats[k]
		if c == nil {
			c = &chatState{}
			st.chats[k] = c
		}
		return c
	}
	app := func(token string) *[2]int64 {
		a := st.apps[token]
		if a == nil {
			a = &[2]int64{}
			st.apps[token] = a
		}
		return a
	}
	err := store.StreamHeads(ctx, func(h eventstore.StreamHead) error {
		s, ok := events.ParseStream(h.StreamID)
		if !ok {
			return fmt.Errorf("stream id %q is not one this build writes", h.StreamID)
		}
		if !keep(s.Token) {
			return nil
		}
		switch s.Kind {
		case "app":
			app(s.Token)[0] = h.Version
		case "chat":
			a := app(s.Token)
			a[1] = max(a[1], s.Chat)
			chat(chatKey{s.Token, s.Chat}).version = h.Version
		case "msg":
			st.messages++
			c := chat(chatKey{s.Token, s.Chat})
			for int64(len(c.numbers)) <= s.Number {
				c.numbers = append(c.numbers, make([]bool, len(c.numbers)+64)...)
			}
			c.numbers[s.Number] = true
			c.last = max(c.last, s.Number)
			if h.Version > 1 {
				k := chatKey{s.Token, s.Chat}
				if st.edits[k] == nil {
					st.edits[k] = map[int64]int64{}
				}
				st.edits[k][s.Number] = h.Version - 1
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = store.DeletedStreams(ctx, func(id string) error {
		if s, ok := events.ParseStream(id); ok && s.Kind == "msg" && keep(s.Token) {
			st.deleted = append(st.deleted, numbering.Message{Token: s.Token, Chat: s.Chat, Number: s.Number})
		}
		return nil
	})
	return st, err
}

func (st *state) write(ctx context.Context, r *numbering.Restore) error {
	for token, a := range st.apps {
		if a[0] == 0 {
			continue // chats without their application's create: nothing to hand out under it
		}
		if err := r.Application(ctx, token, a[0], a[1]); err != nil {
			return err
		}
	}
	for k, c := range st.chats {
		if c.version == 0 {
			continue
		}
		if err := r.Chat(ctx, k.token, k.chat, c.version, c.last); err != nil {
			return err
		}
		for n := int64(1); n < c.last; n++ {
			if !c.numbers[n] {
				if err := r.Failed(ctx, k.token, k.chat, n); err != nil {
					return err
				}
			}
		}
	}
	for k, edits := range st.edits {
		for n, e := range edits {
			if err := r.Edits(ctx, k.token, k.chat, n, e); err != nil {
				return err
			}
		}
	}
	for _, m := range st.deleted {
		if err := r.Deleted(ctx, m.Token, m.Chat, m.Number); err != nil {
			return err
		}
	}
	return nil
}
