package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/partition"
	"github.com/chatsys/chat/rediscluster"
	"github.com/chatsys/chat/searchindex"
)

// errChecksFailed makes the process exit non-zero after a report of failures.
var errChecksFailed = errors.New("some checks failed")

// doctorTimeout bounds each check: a dependency that does not answer in
// time fails its check, and the checks after it are skipped.
const doctorTimeout = 5 * time.Second

// doctor runs checks against the configured dependencies: all of them
// without an argument, partial matching on Elasticsearch with "search".
func doctor(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	switch {
	case len(args) == 0:
		return doctorAll(ctx, cfg, out)
	case len(args) == 1 && args[0] == "search":
		return doctorSearch(ctx, cfg, out)
	}
	return fmt.Errorf("usage: chat doctor [search]")
}

func doctorSearch(ctx context.Context, cfg config.Config, out io.Writer) error {
	es, err := newElasticsearch(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fmt.Fprintf(out, "checking partial matching on %s\n", cfg.ElasticsearchURL)
	ok, err := checkSearch(ctx, es, cfg.Namespace, out)
	if err != nil {
		return err
	}
	if !ok {
		return errChecksFailed
	}
	fmt.Fprintln(out, "all search checks passed")
	return nil
}

// doctorAll checks every dependency. The dependencies are checked at once,
// each with its checks in order, and reported in a fixed order.
func doctorAll(ctx context.Context, cfg config.Config, out io.Writer) error {
	groups := []struct {
		dep   string
		check func(context.Context, config.Config, *checkup)
	}{
		{"mysql", checkMySQL},
		{"redis", checkRedis},
		{"rabbitmq", checkRabbitMQ},
		{"elasticsearch", checkElasticsearch},
	}
	fmt.Fprintf(out, "checking the dependencies of namespace %s (each check within %s)\n", cfg.Namespace, doctorTimeout)
	ups := make([]*checkup, len(groups))
	done := make([]chan struct{}, len(groups))
	for i, g := range groups {
		ups[i] = &checkup{dep: g.dep, timeout: doctorTimeout}
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			g.check(ctx, cfg, ups[i])
		}()
	}
	var count [4]int
	for i := range groups {
		<-done[i]
		for _, f := range ups[i].findings {
			count[f.verdict]++
			f.print(out, ups[i].dep)
		}
	}
	fmt.Fprintf(out, "%d ok, %d warnings, %d failed, %d skipped\n", count[passed], count[warned], count[failed], count[skipped])
	if count[failed] > 0 {
		return errChecksFailed
	}
	return nil
}

type verdict int

const (
	passed verdict = iota
	warned
	failed
	skipped
)

func (v verdict) String() string { return [...]string{"ok", "WARN", "FAIL", "skip"}[v] }

// finding is the outcome of one check: what was found or what is wrong,
// and for a warning or a failure, how to fix it.
type finding struct {
	verdict verdict
	what    string
	detail  string
	fix     string
}

func ok(format string, args ...any) finding {
	return finding{verdict: passed, detail: fmt.Sprintf(format, args...)}
}

func warn(detail, fix string) finding { return finding{verdict: warned, detail: detail, fix: fix} }

func fail(detail, fix string) finding { return finding{verdict: failed, detail: detail, fix: fix} }

const indent = "                    " // under the check's name

func (f finding) print(out io.Writer, dep string) {
	fmt.Fprintf(out, "%-4s  %-13s %s: %s\n", f.verdict, dep, f.what, strings.ReplaceAll(f.detail, "\n", "\n"+indent))
	if f.fix != "" {
		fmt.Fprintf(out, "%sfix: %s\n", indent, strings.ReplaceAll(f.fix, "\n", "\n"+indent+"     "))
	}
}

// checkup is one dependency's checks, run in order.
type checkup struct {
	dep      string
	where    string // the server, for a check that got no answer
	timeout  time.Duration
	findings []finding
	skip     string // why the remaining checks are skipped
}

// stop skips the remaining checks, for the first reason given.
func (c *checkup) stop(reason string) {
	if c.skip == "" {
		c.skip = reason
	}
}

// run runs one check within the timeout and reports whether it passed (a
// warning passes). A check that does not finish in time fails and stops the
// checks after it; it is left to finish in the background, so it must not
// write anything the caller reads afterwards.
func (c *checkup) run(ctx context.Context, what string, check func(ctx context.Context) finding) bool {
	if c.skip != "" {
		c.findings = append(c.findings, finding{verdict: skipped, what: what, detail: c.skip})
		return false
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res := make(chan finding, 1)
	go func() { res <- check(ctx) }()
	var f finding
	select {
	case f = <-res:
	case <-ctx.Done():
		if parent.Err() != nil {
			f = fail("interrupted", "")
			c.stop("interrupted")
		} else {
			f = fail(fmt.Sprintf("%s: no answer within %s", c.where, c.timeout), "check that the server is up, not overloaded, and reachable from here")
			c.stop("an earlier check got no answer")
		}
	}
	f.what = what
	c.findings = append(c.findings, f)
	return f.verdict == passed || f.verdict == warned
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// MySQL

// mysqlPrivileges are what the processes need on the database: migrate
// creates and alters tables, replay creates, renames and drops them, and
// every process reads and writes rows.
var mysqlPrivileges = []string{"CREATE", "ALTER", "DROP", "SELECT", "INSERT", "UPDATE", "DELETE"}

func checkMySQL(ctx context.Context, cfg config.Config, c *checkup) {
	mc, err := mysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		c.run(ctx, "configuration", func(context.Context) finding { return fail(err.Error(), "correct CHAT_MYSQL_DSN") })
		return
	}
	// The server is reached without naming the database, so that a missing
	// database is told apart from a server that is down.
	c.where = mc.Addr
	serverDSN := mc.Clone()
	serverDSN.DBName = ""
	server, err := mysqldb.Open(serverDSN.FormatDSN(), 2)
	if err != nil {
		c.run(ctx, "configuration", func(context.Context) finding { return fail(err.Error(), "correct CHAT_MYSQL_DSN") })
		return
	}
	defer server.Close()
	db, err := mysqldb.Open(cfg.MySQLDSN, 2)
	if err != nil {
		c.run(ctx, "configuration", func(context.Context) finding { return fail(err.Error(), "correct CHAT_MYSQL_DSN") })
		return
	}
	defer db.Close()

	if !c.run(ctx, "reachable", func(ctx context.Context) finding {
		var version string
		if err := server.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
			var me *mysql.MySQLError
			if errors.As(err, &me) && (me.Number == 1045 || me.Number == 1698) { // access denied
				return fail(fmt.Sprintf("%s refused user %s: %v", mc.Addr, mc.User, err), "check the user and password in CHAT_MYSQL_DSN")
			}
			return fail(fmt.Sprintf("%s: %v", mc.Addr, err), "start MySQL, or point CHAT_MYSQL_DSN at it")
		}
		return ok("%s as %s, server %s", mc.Addr, mc.User, version)
	}) {
		c.stop("MySQL is not reachable")
	}

	if !c.run(ctx, "database", func(ctx context.Context) finding {
		var n int
		if err := server.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", mc.DBName).Scan(&n); err != nil {
			return fail(err.Error(), "")
		}
		if n == 0 {
			return fail(fmt.Sprintf("database %s does not exist (or user %s has no privilege on it)", mc.DBName, mc.User),
				"run `chat migrate`: it creates the database and its tables")
		}
		return ok("%s exists", mc.DBName)
	}) {
		c.stop("the database is missing or could not be looked up")
	}

	c.run(ctx, "privileges", func(ctx context.Context) finding { return mysqlPrivilegeProbe(ctx, db, cfg.Namespace, mc.DBName) })

	c.run(ctx, "migrations", func(ctx context.Context) finding {
		err := mysqldb.CheckMigrated(ctx, db, cfg.Namespace)
		switch {
		case errors.Is(err, mysqldb.ErrNotMigrated):
			return fail(err.Error(), "run `chat migrate` (serve, work and all refuse to start until it has run)")
		case err != nil:
			return fail(err.Error(), "")
		}
		return ok("every migration of this build is applied to namespace %s", cfg.Namespace)
	})
	checkPartitions(ctx, db, cfg, c)
}

// checkPartitions reports the event log's partitions: how many, and for
// each its head, its writer and how far each projection is behind it.
func checkPartitions(ctx context.Context, db *sql.DB, cfg config.Config, c *checkup) {
	var parts []partition.Status
	if !c.run(ctx, "partitions", func(ctx context.Context) finding {
		var err error
		if parts, err = partition.NewTable(db, cfg.Namespace).List(ctx); err != nil {
			return fail(err.Error(), "")
		}
		if len(parts) == 0 {
			return fail("the namespace has no partitions", "run `chat migrate`")
		}
		owners := map[string]bool{}
		for _, p := range parts {
			if p.Owner != "" && p.Left > 0 {
				owners[p.Owner] = true
			}
		}
		workers := fmt.Sprintf("%d workers", len(owners))
		if len(owners) == 1 {
			workers = "1 worker"
		}
		return ok("%d partitions (fixed when the namespace was first migrated), written by %s", len(parts), workers)
	}) {
		return
	}
	names := catalog.New(cfg.Namespace)
	cps := checkpoint.New(cfg.Namespace)
	for _, p := range parts {
		c.run(ctx, fmt.Sprintf("partition %d", p.Partition), func(ctx context.Context) finding {
			var readAt int64
			if err := db.QueryRowContext(ctx, "SELECT position FROM "+names.ReadTables().Position+" WHERE id = ?", p.Partition).Scan(&readAt); err != nil {
				return fail(err.Error(), "")
			}
			lags := []string{fmt.Sprintf("mysql %d", p.Head-readAt)}
			for _, name := range []string{"search", "registry"} {
				at, err := cps.Get(ctx, db, name, p.Partition)
				if err != nil {
					return fail(err.Error(), "")
				}
				lags = append(lags, fmt.Sprintf("%s %d", name, p.Head-at))
			}
			detail := fmt.Sprintf("head %d; behind it: %s", p.Head, strings.Join(lags, ", "))
			if p.Owner == "" || p.Left <= 0 {
				return warn(detail+"; no writer: its events are neither stored nor projected",
					"start `chat work` (or `chat all`); a running worker takes a partition within seconds of its lease running out")
			}
			return ok("%s; writer %s (epoch %d, lease %s left)", detail, p.Owner, p.Epoch, p.Left.Round(100*time.Millisecond))
		})
	}
}

// mysqlPrivilegeProbe tries each privilege the processes need on a scratch
// table, created and dropped again, and takes a named lock: it finds what the
// server lets this user do, however the grants are spelt (roles, wildcards,
// MySQL or MariaDB). The scratch table has one name per namespace, so that a
// user who may create but not drop is left with one table, not one a run.
func mysqlPrivilegeProbe(ctx context.Context, db *sql.DB, namespace, dbName string) finding {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fail(err.Error(), "")
	}
	defer conn.Close()
	var user string
	if err := conn.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&user); err != nil {
		return fail(err.Error(), "")
	}
	names := catalog.New(namespace)
	probe := names.DoctorProbe()
	var denied, unprobed []string
	created := false
	for _, step := range []struct{ privilege, stmt string }{
		{"CREATE", "CREATE TABLE IF NOT EXISTS " + probe + " (id INT NOT NULL PRIMARY KEY, v INT NULL) ENGINE=InnoDB"},
		{"ALTER", "ALTER TABLE " + probe + " COMMENT = 'chat doctor: privilege probe'"},
		{"DELETE", "DELETE FROM " + probe},
		{"INSERT", "INSERT INTO " + probe + " (id, v) VALUES (1, 1)"},
		{"SELECT", "SELECT COUNT(*) FROM " + probe},
		{"UPDATE", "UPDATE " + probe + " SET v = 2 WHERE id = 1"},
		{"DROP", "DROP TABLE " + probe},
	} {
		if step.privilege != "CREATE" && !created {
			unprobed = append(unprobed, step.privilege)
			continue
		}
		var err error
		if step.privilege == "SELECT" {
			var n int
			err = conn.QueryRowContext(ctx, step.stmt).Scan(&n)
		} else {
			_, err = conn.ExecContext(ctx, step.stmt)
		}
		switch {
		case err == nil && step.privilege == "CREATE":
			created = true
		case err == nil && step.privilege == "DROP":
			created = false
		case err != nil:
			var me *mysql.MySQLError
			if !errors.As(err, &me) || !accessDenied[me.Number] {
				return fail(fmt.Sprintf("probing %s: %v", step.privilege, err), "")
			}
			denied = append(denied, fmt.Sprintf("%s (%v)", step.privilege, err))
		}
	}
	if created {
		// DROP was denied or failed: leave no scratch table behind if at all possible.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_, _ = conn.ExecContext(cleanup, "DROP TABLE IF EXISTS "+probe)
		cancel()
	}
	lock := names.DoctorLock(randomSuffix())
	var got sql.NullInt64
	lockErr := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", lock).Scan(&got)
	if lockErr == nil && got.Int64 != 1 {
		lockErr = fmt.Errorf("GET_LOCK of a free lock returned %v", got)
	}
	if lockErr == nil {
		_, _ = conn.ExecContext(ctx, "DO RELEASE_LOCK(?)", lock)
	}
	if len(denied) == 0 && lockErr != nil {
		return fail("named locks do not work: "+lockErr.Error(),
			"the event store writer and the projectors fence their work with GET_LOCK; connect to MySQL directly, not through a proxy or pooler that does not keep a session's locks")
	}
	if len(denied) == 0 {
		return ok("%s and GET_LOCK work for %s on %s (tried on a scratch table, dropped again)", strings.Join(mysqlPrivileges, ", "), user, dbName)
	}
	detail := "denied: " + strings.Join(denied, "; ")
	if len(unprobed) > 0 {
		detail += "\nnot tried without CREATE: " + strings.Join(unprobed, ", ")
	}
	if lockErr != nil {
		detail += "\nnamed locks do not work either: " + lockErr.Error()
	}
	if created {
		detail += "\nthe scratch table " + probe + " is left behind; a run with DROP granted removes it"
	}
	return fail(detail, fmt.Sprintf("GRANT %s ON `%s`.* TO %s;\n(migrate needs CREATE and ALTER, replay CREATE, ALTER and DROP, every process SELECT, INSERT, UPDATE and DELETE; the event store writer and the projectors need named locks)",
		strings.Join(mysqlPrivileges, ", "), dbName, quoteUser(user)))
}

// accessDenied are the error numbers of a missing privilege: on a table, a
// column, a database, or a global one.
var accessDenied = map[uint16]bool{1142: true, 1143: true, 1044: true, 1227: true}

// quoteUser turns CURRENT_USER()'s user@host into 'user'@'host'.
func quoteUser(user string) string {
	name, host, found := strings.Cut(user, "@")
	if !found {
		return "'" + user + "'"
	}
	return "'" + name + "'@'" + host + "'"
}

// Redis

func checkRedis(ctx context.Context, cfg config.Config, c *checkup) {
	addrs, err := rediscluster.Check(cfg.RedisURL)
	if err != nil {
		c.run(ctx, "configuration", func(context.Context) finding { return fail(err.Error(), "correct CHAT_REDIS_URL") })
		return
	}
	// A doctor reports a failure; it does not hide it behind retries.
	rdb, err := rediscluster.Open(cfg.RedisURL, rediscluster.Options{PoolSize: 2, MaxRetries: -1, DialTimeout: c.timeout})
	if err != nil {
		c.run(ctx, "configuration", func(context.Context) finding { return fail(err.Error(), "correct CHAT_REDIS_URL") })
		return
	}
	defer rdb.Close()
	where := strings.Join(addrs, ", ")
	c.where = where

	if !c.run(ctx, "reachable", func(ctx context.Context) finding {
		info, err := rdb.Info(ctx, "server").Result()
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "invalid password") {
				return fail(fmt.Sprintf("%s: %v", where, err), "check the user and password in CHAT_REDIS_URL")
			}
			return fail(fmt.Sprintf("%s: %v", where, err), "start Redis, or point CHAT_REDIS_URL at it")
		}
		fields := infoFields(info)
		return ok("%s, server %s (%s mode)", where, fields["redis_version"], fields["redis_mode"])
	}) {
		c.stop("Redis is not reachable")
	}

	c.run(ctx, "numbering epoch", func(ctx context.Context) finding {
		numbers := numbering.New(rdb, cfg.Namespace)
		masters, err := numbers.Masters(ctx)
		if err != nil {
			return fail(err.Error(), "")
		}
		var lines []string
		missing, stale := 0, 0
		for _, m := range masters {
			missing += len(m.Missing())
			stale += len(m.Stale())
			lines = append(lines, fmt.Sprintf("master %s run %s: %d slots, %d sealed, %d missing, %d sealed by another run",
				m.Addr, short(m.RunID), len(m.Slots), len(m.Sealed()), len(m.Missing()), len(m.Stale())))
		}
		report := strings.Join(lines, "\n")
		switch {
		case missing > 0:
			return fail(fmt.Sprintf("%d slot epochs are missing: Redis holds no numbering state there for namespace %s (a new or emptied server, or lost data), so commands there answer 503\n%s", missing, cfg.Namespace, report),
				"a worker must rebuild it from the event store, and `chat work` does so on its own within seconds: start one if none runs\n(for a namespace with no events yet, `chat migrate` seals it at once)")
		case stale > 0:
			return fail(fmt.Sprintf("%d slot epochs were set by a Redis run that is gone: a master restarted or failed over and may have lost the last numbers\n%s", stale, report),
				"a running `chat work` notices within a second and rebuilds those slots from the event store; if this persists, no worker is running: start one")
		}
		return ok("every slot sealed by its master's run\n%s", report)
	})

	c.run(ctx, "persistence", func(ctx context.Context) finding {
		appendOnly, fsync := "", ""
		if conf, err := rdb.ConfigGet(ctx, "append*").Result(); err == nil {
			appendOnly, fsync = conf["appendonly"], conf["appendfsync"]
		} else if info, ierr := rdb.Info(ctx, "persistence").Result(); ierr == nil {
			// CONFIG is often disabled on managed servers; INFO still tells whether AOF is on.
			switch infoFields(info)["aof_enabled"] {
			case "1":
				appendOnly = "yes"
			case "0":
				appendOnly = "no"
			}
			fsync = "unknown (CONFIG GET refused: " + err.Error() + ")"
		} else {
			return warn("cannot tell: CONFIG GET and INFO persistence were refused: "+err.Error(), "make sure the server runs with appendonly yes and appendfsync everysec")
		}
		why := "the numbering state (the last chat and message numbers handed out) lives in Redis; without AOF a restart or crash loses everything written since the last snapshot, the workers must rebuild it from the event store, and commands answer 503 until they have"
		switch {
		case appendOnly == "no":
			return warn(fmt.Sprintf("appendonly no, appendfsync %s: %s", fsync, why),
				"CONFIG SET appendonly yes and CONFIG SET appendfsync everysec, and set both in redis.conf (or run redis-server --appendonly yes --appendfsync everysec)")
		case appendOnly == "yes" && fsync == "no":
			return warn("appendonly yes, appendfsync no: the operating system decides when the log reaches the disk, so a machine crash can lose many seconds of numbering state",
				"CONFIG SET appendfsync everysec, and set it in redis.conf")
		}
		return ok("appendonly %s, appendfsync %s", appendOnly, fsync)
	})
}

// infoFields parses the key:value lines of INFO.
func infoFields(info string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, found := strings.Cut(strings.TrimSpace(line), ":"); found {
			out[k] = v
		}
	}
	return out
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

// RabbitMQ

func checkRabbitMQ(ctx context.Context, cfg config.Config, c *checkup) {
	nodes, err := broker.ParseNodes(cfg.AMQPURL)
	var uri amqp.URI
	if err == nil {
		uri, err = amqp.ParseURI(nodes.URI())
	}
	if err != nil {
		c.run(ctx, "configuration", func(context.Context) finding { return fail(err.Error(), "correct CHAT_AMQP_URL") })
		return
	}
	where := fmt.Sprintf("%s vhost %s as %s", strings.Join(nodes.Addrs(), ","), uri.Vhost, uri.Username)
	c.where = strings.Join(nodes.Addrs(), ",")
	// The partitions' queues are checked as many as MySQL says there are;
	// without MySQL, partition 0's. MySQL is asked meanwhile, so that a
	// silent one does not double the time the checks take.
	type count struct {
		n   int
		err error
	}
	counted := make(chan count, 1)
	go func() {
		n, err := partitionCount(ctx, cfg)
		counted <- count{n, err}
	}()
	names := namesOf(cfg, 1)
	// The connection is made by a check that may be left running after its
	// timeout, hence the atomic.
	var connection atomic.Pointer[amqp.Connection]
	defer func() {
		if conn := connection.Load(); conn != nil {
			_ = conn.CloseDeadline(time.Now().Add(time.Second))
		}
	}()

	if !c.run(ctx, "reachable", func(ctx context.Context) finding {
		conn, err := broker.Dial(ctx, cfg.AMQPURL, "chat doctor")
		switch {
		case errors.Is(err, amqp.ErrVhost) || amqpCode(err) == amqp.NotAllowed:
			return fail(fmt.Sprintf("%s: %v", where, err), "create the vhost or let the user use it (rabbitmqctl add_vhost, set_permissions), or correct CHAT_AMQP_URL")
		case amqpCode(err) == amqp.AccessRefused:
			return fail(fmt.Sprintf("%s: %v", where, err), "check the user and password in CHAT_AMQP_URL")
		case err != nil:
			return fail(fmt.Sprintf("%s: %v", where, err), "start RabbitMQ, or point CHAT_AMQP_URL at it")
		}
		if !connection.CompareAndSwap(nil, conn) {
			_ = conn.Close()
		}
		product, _ := conn.Properties["product"].(string)
		version, _ := conn.Properties["version"].(string)
		return ok("%s, server %s %s", where, product, version)
	}) {
		c.stop("RabbitMQ is not reachable")
	}

	// A passive declare tells whether an object exists (and a queue's depth),
	// not how it was declared; declaring it again with the properties the
	// processes use is a no-op when they match and a PRECONDITION_FAILED
	// (406) naming the difference when they do not.
	c.run(ctx, "exchange "+names.Exchange, func(context.Context) finding {
		conn := connection.Load()
		err := onChannel(conn, func(ch *amqp.Channel) error {
			return ch.ExchangeDeclarePassive(names.Exchange, "topic", true, false, false, false, nil)
		})
		if amqpCode(err) == amqp.NotFound {
			return fail("does not exist", "run `chat migrate` (every chat process also declares it when it starts)")
		} else if err != nil {
			return fail(err.Error(), "")
		}
		err = onChannel(conn, func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare(names.Exchange, "topic", true, false, false, false, nil)
		})
		if amqpCode(err) == amqp.PreconditionFailed {
			return fail("not a durable topic exchange: "+err.Error(), "delete it (an exchange holds no messages) and run `chat migrate`, which declares it durable")
		} else if err != nil {
			return fail(err.Error(), "")
		}
		return ok("exists, durable topic exchange")
	})

	parts := <-counted
	names = namesOf(cfg, parts.n)
	partsErr := parts.err
	queues := append([]string{names.DeadStore}, names.StoreQueues()...)
	stats := make([]amqp.Queue, len(queues)) // written by the queue checks, read only after they passed
	queuesOK := true
	if partsErr != nil {
		c.run(ctx, "partition queues", func(context.Context) finding {
			return warn("the partition count could not be read from MySQL ("+partsErr.Error()+"); only partition 0's queue is checked", "see the MySQL checks")
		})
	}
	for i, name := range queues {
		queuesOK = c.run(ctx, "queue "+name, func(context.Context) finding {
			conn := connection.Load()
			var q amqp.Queue
			err := onChannel(conn, func(ch *amqp.Channel) (err error) {
				q, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
				return err
			})
			if amqpCode(err) == amqp.NotFound {
				return fail("does not exist", "run `chat migrate` (every chat process also declares it when it starts)")
			} else if err != nil {
				return fail(err.Error(), "")
			}
			shape, err := broker.InspectQueue(conn, names, name)
			if err != nil {
				return fail(err.Error(), "")
			}
			stats[i] = q
			const convert = "stop `chat serve`, let `chat work` drain the queue, stop `chat work`, run `chat migrate` (it declares an empty, unused queue anew), start the processes"
			switch shape {
			case broker.ShapeClassic:
				return warn("a classic queue, on one node: losing that node loses it and the events in it", convert)
			case broker.ShapeUnbounded:
				return warn("a quorum queue without a length bound: an overload lets its backlog, and the read side's lag, grow without limit", convert)
			case broker.ShapeOther:
				return warn("declared otherwise than the processes declare it (another length bound than CHAT_STORE_QUEUE_BYTES, say); it is used as it is", convert)
			}
			if name != names.DeadStore && names.QueueBound > 0 {
				return ok("exists, durable quorum queue, holding at most %d bytes waiting", names.QueueBound)
			}
			return ok("exists, durable quorum queue")
		}) && queuesOK
	}
	if !queuesOK {
		c.stop("a queue is missing or could not be inspected")
	}

	c.run(ctx, "parked events", func(context.Context) finding {
		dead := stats[0]
		if dead.Messages > 0 {
			return warn(fmt.Sprintf("%d events in %s: the event store writer could not store them (undecodable, or a different event claiming a stored stream version); they are not in the event store and wait for a person", dead.Messages, dead.Name),
				"read each one's reason (header reason_poisoned), e.g. with Get messages on the queue's page in the management UI; fix the producer, then republish or purge them")
		}
		return ok("none in %s", dead.Name)
	})

	c.run(ctx, "queued events", func(context.Context) finding {
		ready, consumers := 0, 0
		var unserved []string
		for _, q := range stats[1:] {
			ready += q.Messages
			consumers += q.Consumers
			if q.Consumers == 0 {
				unserved = append(unserved, q.Name)
			}
		}
		if len(unserved) > 0 {
			return warn(fmt.Sprintf("%d ready in %d partition queues; no consumer on %s: no event store writer serves them, so their events are not stored and reads do not move", ready, len(stats)-1, strings.Join(unserved, ", ")),
				"start `chat work` (or `chat all`)")
		}
		return ok("%d ready in %d partition queues, %d consumers", ready, len(stats)-1, consumers)
	})
}

// partitionCount reads how many partitions the namespace has; 1 when it
// cannot.
func partitionCount(ctx context.Context, cfg config.Config) (int, error) {
	db, err := mysqldb.Open(cfg.MySQLDSN, 1)
	if err != nil {
		return 1, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	n, err := partition.NewTable(db, cfg.Namespace).Count(ctx)
	if err != nil {
		return 1, err
	}
	return n, nil
}

// onChannel runs fn on a channel of its own: a failed declare closes it.
func onChannel(conn *amqp.Connection, fn func(*amqp.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	return fn(ch)
}

// amqpCode is the reply code of a channel or connection exception, 0 for
// anything else.
func amqpCode(err error) int {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// Elasticsearch

func checkElasticsearch(ctx context.Context, cfg config.Config, c *checkup) {
	where := cfg.ElasticsearchURL
	if u, err := url.Parse(cfg.ElasticsearchURL); err == nil {
		where = u.Host
	}
	c.where = where
	es, err := newElasticsearch(cfg)
	if err != nil {
		c.run(ctx, "configuration", func(context.Context) finding { return fail(err.Error(), "correct CHAT_ELASTICSEARCH_URL") })
		return
	}
	const outage = "search answers 503 meanwhile; everything else works"

	if !c.run(ctx, "reachable", func(ctx context.Context) finding {
		version, err := es.Version(ctx)
		if err != nil {
			if searchindex.HasStatus(err, http.StatusUnauthorized, http.StatusForbidden) {
				return fail(fmt.Sprintf("%s: %v", where, err), "check the credentials in CHAT_ELASTICSEARCH_URL")
			}
			return fail(fmt.Sprintf("%s: %v", where, err), "start Elasticsearch, or point CHAT_ELASTICSEARCH_URL at it ("+outage+")")
		}
		return ok("%s, version %s", where, version)
	}) {
		c.stop("Elasticsearch is not reachable")
	}

	messages := searchindex.NewIndex(es, cfg.Namespace)
	var index string // written by the alias check, read only after it passed
	if !c.run(ctx, "alias "+messages.Alias, func(ctx context.Context) finding {
		names, err := messages.Targets(ctx)
		if err != nil {
			return fail(err.Error(), "")
		}
		if len(names) == 0 {
			return fail("does not exist, so the search projection has nowhere to write and search finds nothing",
				"start `chat work`: its search projector creates the index and the alias (`chat replay search` rebuilds them from the event store)")
		}
		if len(names) != 1 {
			return fail(fmt.Sprintf("points at %d indices (%s); searches would read them all", len(names), strings.Join(names, ", ")),
				"point it at the newest one only (POST /_aliases with a remove action for the others), or rebuild with `chat replay search`")
		}
		index = names[0]
		return ok("points at %s", index)
	}) {
		c.stop("the alias is missing or wrong")
	}

	c.run(ctx, "mapping", func(ctx context.Context) finding {
		props, err := es.Mapping(ctx, index)
		if err != nil {
			return fail(err.Error(), "")
		}
		if problems := mappingProblems(props); len(problems) > 0 {
			return fail(index+": "+strings.Join(problems, "; "),
				"rebuild the index with this build's mapping: `chat replay search`")
		}
		return ok("%s: token keyword, chat_number and number numeric, body text with ngram and prefix sub-fields", index)
	})
}

// numericTypes are the field types a term filter on a number works on
// (Elasticsearch maps the index's fields as long; the stand-in used in
// tests reports them as numeric).
var numericTypes = map[string]bool{"long": true, "integer": true, "short": true, "unsigned_long": true, "numeric": true}

// mappingProblems lists what the message index's fields lack for what the
// product does with them: token and chat_number filter searches to one chat,
// number orders hits, body's ngram and prefix sub-fields do partial matching.
func mappingProblems(props map[string]searchindex.Field) []string {
	var out []string
	want := func(name string, f searchindex.Field, found bool, ok func(string) bool, wanted string) {
		switch {
		case !found:
			out = append(out, name+" is missing")
		case !ok(f.Type):
			out = append(out, fmt.Sprintf("%s is %q, want %s", name, f.Type, wanted))
		}
	}
	is := func(t string) func(string) bool { return func(s string) bool { return s == t } }
	f, found := props["token"]
	want("token", f, found, is("keyword"), "keyword")
	for _, name := range []string{"chat_number", "number"} {
		f, found := props[name]
		want(name, f, found, func(s string) bool { return numericTypes[s] }, "long")
	}
	body, found := props["body"]
	want("body", body, found, is("text"), "text")
	for _, sub := range []string{"ngram", "prefix"} {
		f, found := body.Fields[sub]
		want("body."+sub, f, found, is("text"), "text")
	}
	return out
}
