package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/searchindex"
	"github.com/chatsys/chat/verify"
)

// verifyProjections folds the event store and compares the fold with the
// read tables and the search index; any difference is an error.
func verifyProjections(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, out, progressOut io.Writer) error {
	withSearch := true
	for _, a := range args {
		switch a {
		case "--no-search":
			withSearch = false
		default:
			return fmt.Errorf("usage: chat verify [--no-search]")
		}
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	var es *searchindex.Client
	if withSearch {
		if es, err = newElasticsearch(cfg); err != nil {
			return err
		}
	}
	bar := newProgress(progressOut, log, "verifying", "")
	v := verify.New(verify.Config{DB: db, Store: eventstore.New(db, cfg.Namespace), Codec: events.NewCodec(), Search: es, Namespace: cfg.Namespace, Progress: bar.Update})
	start := time.Now()
	rep, err := v.Run(ctx)
	bar.Done()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "checked %d events against %d applications, %d chats, %d messages and %d chats in the search index in %s\n",
		rep.Events, rep.Checked.Applications, rep.Checked.Chats, rep.Checked.Messages, rep.Checked.SearchChats, time.Since(start).Round(time.Millisecond))
	for _, d := range rep.Differences {
		fmt.Fprintln(out, "- "+d)
	}
	if len(rep.Differences) > 0 {
		fmt.Fprintln(out, "the projections differ from the event log; `chat replay` rebuilds them")
		return errChecksFailed
	}
	fmt.Fprintln(out, "the projections agree with the event log")
	return nil
}

// openMigrated opens a small pool on the namespace's database, refusing one
// that lacks a migration.
func openMigrated(ctx context.Context, cfg config.Config) (*sql.DB, error) {
	db, err := mysqldb.Open(cfg.MySQLDSN, 4)
	if err != nil {
		return nil, err
	}
	if err := mysqldb.CheckMigrated(ctx, db, cfg.Namespace); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
