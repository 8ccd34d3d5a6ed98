// Command chatgen writes a synthetic event log straight into a namespace's
// event store, to measure replay and verification on logs of millions of
// events:
//
//	chat migrate && chatgen -events 1000000 && chat replay mysql && chat verify
//
// It takes every partition's writer lease, so it refuses to run while a
// worker writes. The Redis numbering state is not written: a worker rebuilds it
// from the generated log (commands answer 503 until then).
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/chatsys/chat/apptoken"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/progress"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/partition"
)

// spec is the log to generate.
type spec struct {
	events, apps, chats int     // events all told, applications, chats per application
	edits               float64 // fraction of messages edited once
	bodySize, batch     int     // bytes per message body, events per append
}

func main() {
	var s spec
	flag.IntVar(&s.events, "events", 1_000_000, "events to append")
	flag.IntVar(&s.apps, "apps", 100, "applications")
	flag.IntVar(&s.chats, "chats", 20, "chats per application")
	flag.Float64Var(&s.edits, "edits", 0.1, "fraction of messages edited once")
	flag.IntVar(&s.bodySize, "body-size", 80, "bytes per message body")
	flag.IntVar(&s.batch, "batch", 2000, "events per append")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := generate(ctx, s, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chatgen:", err)
		os.Exit(1)
	}
}

// generate appends the log s describes to the configured namespace,
// showing its progress on out.
func generate(ctx context.Context, s spec, out io.Writer) error {
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		return err
	}
	db, err := mysqldb.Open(cfg.MySQLDSN, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := mysqldb.CheckMigrated(ctx, db, cfg.Namespace); err != nil {
		return err
	}
	apps, release, err := appenders(ctx, db, eventstore.New(db, cfg.Namespace), cfg.Namespace)
	if err != nil {
		return err
	}
	defer release()
	w := &writer{apps: apps, codec: events.NewCodec(), size: s.batch, total: s.events, meter: progress.New(out), start: time.Now()}
	if err := w.log(ctx, s); err != nil {
		return err
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	w.meter.Done()
	elapsed := time.Since(w.start)
	fmt.Fprintf(out, "appended %d events in %s (%.0f/s) to namespace %s\n", w.appended, elapsed.Round(time.Millisecond), float64(w.appended)/elapsed.Seconds(), cfg.Namespace)
	return nil
}

// writer appends events in batches, each record to its application's
// partition.
type writer struct {
	apps     []*eventstore.Appender
	codec    *events.Codec
	size     int // events per batch
	total    int // events to append
	batch    []events.Record
	appended int
	meter    *progress.Meter
	start    time.Time
}

// full reports whether every event has been written.
func (w *writer) full() bool { return w.appended+len(w.batch) >= w.total }

// emit adds an event, and appends the batch once it is full.
func (w *writer) emit(ctx context.Context, ev events.Event, version int64) error {
	env, err := events.New(ev, version, "chatgen")
	if err != nil {
		return err
	}
	r, err := w.codec.Encode(env)
	if err != nil {
		return err
	}
	w.batch = append(w.batch, r)
	if len(w.batch) < w.size {
		return nil
	}
	return w.flush(ctx)
}

// log emits the applications and their chats, then messages round the
// chats until the log holds s.events.
func (w *writer) log(ctx context.Context, s spec) error {
	tokens := make([]string, s.apps)
	for a := range tokens {
		tokens[a] = apptoken.New()
		if err := w.emit(ctx, events.ApplicationCreated{Token: tokens[a], Name: fmt.Sprintf("app %d", a+1)}, 1); err != nil {
			return err
		}
		for c := int64(1); c <= int64(s.chats); c++ {
			if err := w.emit(ctx, events.ChatCreated{Token: tokens[a], Number: c, Name: fmt.Sprintf("chat %d", c)}, 1); err != nil {
				return err
			}
		}
	}
	body := strings.Repeat("lorem ipsum dolor sit amet ", s.bodySize/27+1)[:s.bodySize]
	next := make([]int64, s.apps*s.chats)
	everyEdit := 0
	if s.edits > 0 {
		everyEdit = int(1 / s.edits)
	}
	for i := 0; !w.full(); i++ {
		k := i % len(next)
		next[k]++
		tok, chat := tokens[k/s.chats], int64(k%s.chats+1)
		if err := w.emit(ctx, events.MessageCreated{Token: tok, ChatNumber: chat, Number: next[k], Body: fmt.Sprintf("%d %s", i, body)}, 1); err != nil {
			return err
		}
		if everyEdit > 0 && i%everyEdit == 0 && !w.full() {
			if err := w.emit(ctx, events.MessageEdited{Token: tok, ChatNumber: chat, Number: next[k], Body: "edited " + body}, 2); err != nil {
				return err
			}
		}
	}
	return nil
}

// appenders takes every partition's writer lease, so that no worker writes
// while the log is generated; release gives them back.
func appenders(ctx context.Context, db *sql.DB, store *eventstore.Store, namespace string) ([]*eventstore.Appender, func(), error) {
	table := partition.NewTable(db, namespace)
	n, err := table.Count(ctx)
	if err != nil {
		return nil, nil, err
	}
	var leases []partition.Lease
	release := func() {
		for _, l := range leases {
			_ = table.Release(context.WithoutCancel(ctx), l)
		}
	}
	out := make([]*eventstore.Appender, n)
	for p := range out {
		l, ok, err := table.Acquire(ctx, p, "chatgen", time.Hour)
		if err == nil && !ok {
			err = fmt.Errorf("partition %d has a writer: stop the workers (chat work, chat all) first", p)
		}
		if err != nil {
			release()
			return nil, nil, err
		}
		leases = append(leases, l)
		out[p] = store.Appender(p, l.Epoch)
	}
	return out, release, nil
}

// flush appends the batch, each record to its application's partition.
func (w *writer) flush(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	byPartition := make([][]events.Record, len(w.apps))
	for _, r := range w.batch {
		p := partition.Of(events.TokenOf(r.StreamID), len(w.apps))
		byPartition[p] = append(byPartition[p], r)
	}
	for p, recs := range byPartition {
		if len(recs) == 0 {
			continue
		}
		if _, err := w.apps[p].Append(ctx, recs); err != nil {
			return err
		}
	}
	w.appended += len(w.batch)
	w.batch = w.batch[:0]
	w.meter.Update("append", int64(w.appended), int64(w.total))
	return nil
}
