// Package testenv gives each test its own namespace and database on the real
// MariaDB, Redis and RabbitMQ, and removes them afterwards, so tests run in
// parallel and twice in a row.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/partition"
	"github.com/chatsys/chat/recovery"
	"github.com/chatsys/chat/rediscluster"
	"github.com/chatsys/chat/searchindex"
)

// Config returns a configuration with a fresh namespace whose database has
// been migrated, and registers the clean-up of everything it names. The
// services come from the usual CHAT_* variables, or their defaults.
func Config(t testing.TB) config.Config {
	t.Helper()
	return ConfigOn(t, "")
}

// ConfigOn is Config with the Redis at redisURL, such as a Cluster's URL;
// "" keeps the configured one. Each of change, if any, may change the
// configuration before the namespace is migrated and its broker topology
// declared (the partition count, the broker's URL).
func ConfigOn(t testing.TB, redisURL string, change ...func(*config.Config)) config.Config {
	t.Helper()
	if testing.Short() {
		t.Skip("needs MariaDB, Redis and RabbitMQ; -short runs only the tests that need no service")
	}
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	if redisURL != "" {
		cfg.RedisURL = redisURL
	}
	ns := "t" + strings.ToLower(randomString(10))
	cfg.Namespace = ns
	mc, err := mysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	mc.DBName = "chat_" + ns
	cfg.MySQLDSN = mc.FormatDSN()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.LogLevel = "warn"
	cfg.StorePrefetch = 64
	// Four partitions unless the environment asks for another count: a
	// namespace of several, cheaper to set up and tear down than the default.
	if _, set := os.LookupEnv("CHAT_PARTITIONS"); !set {
		cfg.Partitions = 4
	}
	cfg.PublishChannels = 16
	cfg.ShutdownTimeout = 20 * time.Second

	for _, c := range change {
		c(&cfg)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mysqldb.CreateDatabase(ctx, cfg.MySQLDSN); err != nil {
		t.Fatalf("create database: %v", err)
	}
	db, err := mysqldb.Open(cfg.MySQLDSN, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := mysqldb.Migrate(ctx, db, ns, cfg.Partitions); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	names := broker.NamesFor(ns, cfg.Partitions)
	names.QueueBound = int64(cfg.StoreQueueBytes)
	if _, err := broker.DeclareTopology(ctx, cfg.AMQPURL, names); err != nil {
		t.Fatalf("declare broker topology: %v", err)
	}
	rdb := Redis(t, cfg)
	depth := func(ctx context.Context) ([]int, error) {
		return broker.QueueDepths(ctx, cfg.AMQPURL, names.StoreQueues()...)
	}
	if sealed, err := recovery.Initialize(ctx, numbering.New(rdb, ns), eventstore.New(db, ns), depth); err != nil || !sealed {
		t.Fatalf("seal the numbering state: %v, %v", sealed, err)
	}
	t.Cleanup(func() { cleanup(t, cfg, mc.DBName) })
	return cfg
}

func cleanup(t testing.TB, cfg config.Config, dbName string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if db, err := sql.Open("mysql", strings.Replace(cfg.MySQLDSN, "/"+dbName, "/", 1)); err == nil {
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+dbName+"`"); err != nil {
			t.Logf("drop database %s: %v", dbName, err)
		}
		db.Close()
	}
	if rdb, err := rediscluster.Open(cfg.RedisURL, rediscluster.Options{}); err == nil {
		if err := DeleteKeys(ctx, rdb, catalog.New(cfg.Namespace).RedisKeys()); err != nil {
			t.Logf("delete Redis keys: %v", err)
		}
		rdb.Close()
	}
	if err := DeleteTopology(cfg.AMQPURL, broker.NamesFor(cfg.Namespace, cfg.Partitions)); err != nil {
		t.Logf("delete broker topology: %v", err)
	}
	if es, err := searchindex.Open(searchindex.Config{URL: cfg.ElasticsearchURL}); err == nil {
		_ = searchindex.NewIndex(es, cfg.Namespace).Delete(ctx)
	}
}

// Logger logs to the test's output at cfg's level.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(writer{t}, &slog.HandlerOptions{Level: level}))
}

type writer struct{ t testing.TB }

func (w writer) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// DB opens the namespace's database.
func DB(t testing.TB, cfg config.Config) *sql.DB {
	db, err := mysqldb.Open(cfg.MySQLDSN, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Redis opens a client of the configured Redis: one server, or a cluster.
func Redis(t testing.TB, cfg config.Config) redis.UniversalClient {
	rdb, err := rediscluster.Open(cfg.RedisURL, rediscluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// DeleteKeys deletes the keys matching pattern on every master, as a flush
// or a restart without persistence would lose them.
func DeleteKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) error {
	return rediscluster.ForEachMaster(ctx, rdb, func(ctx context.Context, m rediscluster.Master) error {
		pipe := m.Client.Pipeline()
		iter := m.Client.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			pipe.Del(ctx, iter.Val())
			if pipe.Len() >= 1000 {
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		_, err := pipe.Exec(ctx)
		return err
	})
}

func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// SearchWait is how long a test waits for the search index to show a
// write. The search stand-in that tests run against has been seen to answer
// nothing in time for most of a minute while other tests hold both cores;
// a passing test waits only as long as the index takes.
const SearchWait = 2 * time.Minute

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Watermill returns the processes' Watermill configuration of the
// namespace's topology, for tests that publish or consume on their own.
func Watermill(t testing.TB, cfg config.Config, publishChannels int) wamqp.Config {
	t.Helper()
	c, err := broker.WatermillConfig(cfg.AMQPURL, broker.NamesFor(cfg.Namespace, cfg.Partitions), publishChannels)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ClassicQueues replaces the namespace's store and dead queues by durable
// classic queues, as a release before quorum queues declared them.
func ClassicQueues(t testing.TB, cfg config.Config) {
	t.Helper()
	conn, err := broker.Dial(context.Background(), cfg.AMQPURL, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	for _, q := range []string{names.Store, names.DeadStore} {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// Appender returns an appender of a namespace's partition, holding the
// partition's writer lease until the test ends, for tests that write the
// event log without a worker.
func Appender(t testing.TB, db *sql.DB, namespace string, part int) *eventstore.Appender {
	t.Helper()
	ctx := context.Background()
	table := partition.NewTable(db, namespace)
	l, ok, err := table.Acquire(ctx, part, "test", time.Hour)
	if err != nil || !ok {
		t.Fatalf("take partition %d's lease: %v, %v", part, ok, err)
	}
	t.Cleanup(func() { _ = table.Release(context.Background(), l) })
	return eventstore.New(db, namespace).Appender(part, l.Epoch)
}

// DeleteTopology removes a namespace's exchange and queues.
// A queue it cannot delete does not stop it: it goes on with the others,
// on a new channel (a failed delete closes the channel), and reports every
// failure.
func DeleteTopology(amqpURLs string, names broker.Names) error {
	conn, err := broker.Dial(context.Background(), amqpURLs, "chat topology")
	if err != nil {
		return err
	}
	defer conn.Close()
	var (
		ch   *amqp.Channel
		errs []error
	)
	del := func(what string, fn func(*amqp.Channel) error) {
		if ch == nil || ch.IsClosed() {
			if ch, err = conn.Channel(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
				ch = nil
				return
			}
		}
		if err := fn(ch); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	for _, q := range append(names.StoreQueues(), names.DeadStore) {
		del("queue "+q, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
	}
	del("exchange "+names.Exchange, func(ch *amqp.Channel) error { return ch.ExchangeDelete(names.Exchange, false, false) })
	if ch != nil {
		ch.Close()
	}
	return errors.Join(errs...)
}
