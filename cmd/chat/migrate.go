package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/partition"
	"github.com/chatsys/chat/recovery"
)

// migrate is `chat migrate`: the database and its schema, the broker's
// topology (converting queues of an older shape), and a new namespace's
// numbering state.
func migrate(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := mysqldb.CreateDatabase(ctx, cfg.MySQLDSN); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	db, err := mysqldb.Open(cfg.MySQLDSN, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := mysqldb.Migrate(ctx, db, cfg.Namespace, cfg.Partitions)
	if err != nil {
		return err
	}
	parts, err := partition.NewTable(db, cfg.Namespace).Count(ctx)
	if err != nil {
		return err
	}
	log.Info("migrations applied", "namespace", cfg.Namespace, "applied", n, "partitions", parts)
	if parts != cfg.Partitions {
		log.Warn("the namespace keeps the partition count it was first migrated with; CHAT_PARTITIONS is read only then", "partitions", parts, "CHAT_PARTITIONS", cfg.Partitions)
	}

	// A new namespace's numbering state is sealed here, so the API can hand
	// out numbers at once; otherwise a worker rebuilds it from the events.
	// Queues of an older release's shape are declared anew here when they are
	// empty and unused; a queue converted while a process publishes would
	// drop what is published in between, hence here and not at start-up.
	names, err := broker.ConvertQueues(ctx, cfg.AMQPURL, namesOf(cfg, parts))
	if err != nil {
		return err
	}
	warnClassic(log, names)
	rdb, err := newRedis(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	sealed, err := recovery.Initialize(ctx, numbering.New(rdb, cfg.Namespace), eventstore.New(db, cfg.Namespace), queueDepth(cfg.AMQPURL, names))
	if err != nil {
		return fmt.Errorf("numbering state: %w", err)
	}
	if !sealed {
		log.Warn("the numbering state in Redis is missing or stale; a worker (chat work) rebuilds it from the event store, and commands answer 503 until then")
	}
	return nil
}
