package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
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
	bar := newProgress(progressOut, log)
	rp := projections.NewReplay(projections.ReplayConfig{DB: db, Store: store, Codec: events.NewCodec(), Search: es, Namespace: cfg.Namespace, Log: log, Progress: bar.update})
	rp.Restart = restart
	start := time.Now()
	if which == "mysql" || which == "all" {
		if err := rp.MySQL(ctx); err != nil {
			return fmt.Errorf("replay mysql: %w", err)
		}
		bar.done()
	}
	if which == "search" || which == "all" {
		if err := rp.Search(ctx); err != nil {
			return fmt.Errorf("replay search: %w", err)
		}
		bar.done()
	}
	fmt.Fprintf(out, "replayed %s from %d events in %d partitions in %s\n", which, total, len(heads), time.Since(start).Round(time.Millisecond))
	return nil
}

// progress shows a bar with events/s and ETA on a terminal, and a log line
// every five seconds otherwise.
type progress struct {
	w       io.Writer
	tty     bool
	log     *slog.Logger
	label   string
	start   time.Time
	last    time.Time
	started int64
}

func newProgress(w io.Writer, log *slog.Logger) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil {
			tty = st.Mode()&os.ModeCharDevice != 0
		}
	}
	return &progress{w: w, tty: tty, log: log}
}

func (p *progress) update(label string, done, total int64) {
	now := time.Now()
	if label != p.label {
		p.label, p.start, p.started = label, now, done
	}
	rate := float64(done-p.started) / max(now.Sub(p.start).Seconds(), 0.001)
	eta := time.Duration(0)
	if rate > 0 {
		eta = time.Duration(float64(total-done)/rate) * time.Second
	}
	if p.tty {
		const width = 30
		filled := int(float64(width) * float64(done) / float64(max(total, 1)))
		fmt.Fprintf(p.w, "\r%-6s [%s%s] %3.0f%% %d/%d events  %.0f/s  ETA %s ",
			label, strings.Repeat("#", filled), strings.Repeat(".", width-filled),
			100*float64(done)/float64(max(total, 1)), done, total, rate, eta.Round(time.Second))
		return
	}
	if now.Sub(p.last) >= 5*time.Second {
		p.last = now
		p.log.Info("replaying", "projection", label, "events", done, "of", total, "events_per_second", int(rate), "eta", eta.Round(time.Second).String())
	}
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
	p.label = ""
}
