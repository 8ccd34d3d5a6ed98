package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/progress"
	"github.com/chatsys/chat/projections"
)

const replayUsage = "usage: chat replay [mysql|search|all] [--dry-run] [--restart]"

// replay rebuilds projections from the event store while the system runs.
func replay(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, out, progressOut io.Writer) error {
	which, dryRun, restart := "all", false, false
	for _, a := range args {
		switch a {
		case "mysql", "search", "all":
			which = a
		case "--dry-run":
			dryRun = true
		case "--restart":
			restart = true
		default:
			return fmt.Errorf("%s", replayUsage)
		}
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	store := eventstore.New(db, cfg.Namespace)
	heads, err := store.Heads(ctx)
	if err != nil {
		return err
	}
	total := int64(0)
	for _, h := range heads {
		total += h
	}
	if dryRun {
		fmt.Fprintf(out, "would rebuild %s from %d events in %d partitions into a new copy, then swap it in; nothing was changed\n", which, total, len(heads))
		return nil
	}
	es, err := newElasticsearch(cfg)
	if err != nil {
		return err
	}
	bar := newProgress(progressOut, log, "replaying", "projection")
	rp := projections.NewReplay(projections.ReplayConfig{DB: db, Store: store, Codec: events.NewCodec(), Search: es, Namespace: cfg.Namespace, Log: log, Progress: bar.Update})
	rp.Restart = restart
	start := time.Now()
	if which == "mysql" || which == "all" {
		if err := rp.MySQL(ctx); err != nil {
			return fmt.Errorf("replay mysql: %w", err)
		}
		bar.Done()
	}
	if which == "search" || which == "all" {
		if err := rp.Search(ctx); err != nil {
			return fmt.Errorf("replay search: %w", err)
		}
		bar.Done()
	}
	fmt.Fprintf(out, "replayed %s from %d events in %d partitions in %s\n", which, total, len(heads), time.Since(start).Round(time.Millisecond))
	return nil
}

// newProgress shows a bar with events/s and ETA on a terminal, and
// otherwise a log line msg every five seconds, with the report's label
// under key unless key is "".
func newProgress(w io.Writer, log *slog.Logger, msg, key string) *progress.Meter {
	m := progress.New(w)
	m.Line = func(r progress.Report) {
		attrs := []any{"events", r.Done, "of", r.Total, "events_per_second", int(r.PerSecond), "eta", r.ETA.String()}
		if key != "" {
			attrs = append([]any{key, r.Label}, attrs...)
		}
		log.Info(msg, attrs...)
	}
	return m
}
