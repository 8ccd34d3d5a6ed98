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
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/chatsys/chat/apptoken"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/partition"
)

func main() {
	total := flag.Int("events", 1_000_000, "events to append")
	apps := flag.Int("apps", 100, "applications")
	chats := flag.Int("chats", 20, "chats per application")
	edits := flag.Float64("edits", 0.1, "fraction of messages edited once")
	bodySize := flag.Int("body-size", 80, "bytes per message body")
	batch := flag.Int("batch", 2000, "events per append")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := generate(ctx, *total, *apps, *chats, *edits, *bodySize, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "chatgen:", err)
		os.Exit(1)
	}
}

func generate(ctx context.Context, total, appCount, chatsPerApp int, editRatio float64, bodySize, batchSize int) error {
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
	store := eventstore.New(db, cfg.Namespace)
	apps, release, err := appenders(ctx, db, store, cfg.Namespace)
	if err != nil {
		return err
	}
	defer release()
	codec := events.NewCodec()

	var (
		batch    []events.Record
		appended int
		start    = time.Now()
	)
	emit := func(ev events.Event, version int64) error {
		env, err := events.New(ev, version, "chatgen")
		if err != nil {
			return err
		}
		r, err := codec.Encode(env)
		if err != nil {
			return err
		}
		batch = append(batch, r)
		if len(batch) < batchSize {
			return nil
		}
		return flush(ctx, apps, &batch, &appended, total, start)
	}
	tokens := make([]string, appCount)
	for a := range tokens {
		tokens[a] = apptoken.New()
		if err := emit(events.ApplicationCreated{Token: tokens[a], Name: fmt.Sprintf("app %d", a+1)}, 1); err != nil {
			return err
		}
		for c := int64(1); c <= int64(chatsPerApp); c++ {
			if err := emit(events.ChatCreated{Token: tokens[a], Number: c, Name: fmt.Sprintf("chat %d", c)}, 1); err != nil {
				return err
			}
		}
	}
	body := strings.Repeat("lorem ipsum dolor sit amet ", bodySize/27+1)[:bodySize]
	next := make([]int64, appCount*chatsPerApp)
	everyEdit := 0
	if editRatio > 0 {
		everyEdit = int(1 / editRatio)
	}
	for i := 0; appended+len(batch) < total; i++ {
		k := i % len(next)
		next[k]++
		tok, chat := tokens[k/chatsPerApp], int64(k%chatsPerApp+1)
		if err := emit(events.MessageCreated{Token: tok, ChatNumber: chat, Number: next[k], Body: fmt.Sprintf("%d %s", i, body)}, 1); err != nil {
			return err
		}
		if everyEdit > 0 && i%everyEdit == 0 && appended+len(batch) < total {
			if err := emit(events.MessageEdited{Token: tok, ChatNumber: chat, Number: next[k], Body: "edited " + body}, 2); err != nil {
				return err
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(ctx, apps, &batch, &appended, total, start); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "\nappended %d events in %s (%.0f/s) to namespace %s\n", appended, time.Since(start).Round(time.Millisecond), float64(appended)/time.Since(start).Seconds(), cfg.Namespace)
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
func flush(ctx context.Context, apps []*eventstore.Appender, batch *[]events.Record, appended *int, total int, start time.Time) error {
	byPartition := make([][]events.Record, len(apps))
	for _, r := range *batch {
		p := partition.Of(events.TokenOf(r.StreamID), len(apps))
		byPartition[p] = append(byPartition[p], r)
	}
	for p, recs := range byPartition {
		if len(recs) == 0 {
			continue
		}
		if _, err := apps[p].Append(ctx, recs); err != nil {
			return err
		}
	}
	*appended += len(*batch)
	*batch = (*batch)[:0]
	fmt.Fprintf(os.Stderr, "\rappended %d of %d events (%.0f/s)", *appended, total, float64(*appended)/time.Since(start).Seconds())
	return nil
}
