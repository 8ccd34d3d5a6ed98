package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/partition"
	"github.com/chatsys/chat/projections"
)

func checkMySQL(ctx context.Context, cfg config.Config, c *checkup) {
	target, err := mysqldb.ParseTarget(cfg.MySQLDSN)
	if err != nil {
		c.misconfigured(ctx, "CHAT_MYSQL_DSN", err)
		return
	}
	c.where = target.Addr
	server, err := mysqldb.OpenServer(cfg.MySQLDSN, 2)
	if err != nil {
		c.misconfigured(ctx, "CHAT_MYSQL_DSN", err)
		return
	}
	defer server.Close()
	db, err := mysqldb.Open(cfg.MySQLDSN, 2)
	if err != nil {
		c.misconfigured(ctx, "CHAT_MYSQL_DSN", err)
		return
	}
	defer db.Close()

	if !c.run(ctx, "reachable", func(ctx context.Context) finding { return mysqlReachable(ctx, server, target) }) {
		c.stop("MySQL is not reachable")
	}
	if !c.run(ctx, "database", func(ctx context.Context) finding {
		found, err := mysqldb.DatabaseExists(ctx, server, target.Database)
		if err != nil {
			return fail(err.Error(), "")
		}
		if !found {
			return fail(fmt.Sprintf("database %s does not exist (or user %s has no privilege on it)", target.Database, target.User),
				"run `chat migrate`: it creates the database and its tables")
		}
		return ok("%s exists", target.Database)
	}) {
		c.stop("the database is missing or could not be looked up")
	}
	c.run(ctx, "privileges", func(ctx context.Context) finding { return mysqlPrivileges(ctx, db, cfg.Namespace, target.Database) })
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

// mysqlReachable asks the server, reached without naming the database, for
// its version.
func mysqlReachable(ctx context.Context, server *sql.DB, t mysqldb.Target) finding {
	version, err := mysqldb.ServerVersion(ctx, server)
	switch {
	case mysqldb.IsAccessDenied(err):
		return fail(fmt.Sprintf("%s refused user %s: %v", t.Addr, t.User, err), "check the user and password in CHAT_MYSQL_DSN")
	case err != nil:
		return fail(fmt.Sprintf("%s: %v", t.Addr, err), "start MySQL, or point CHAT_MYSQL_DSN at it")
	}
	return ok("%s as %s, server %s", t.Addr, t.User, version)
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
	for _, p := range parts {
		c.run(ctx, fmt.Sprintf("partition %d", p.Partition), func(ctx context.Context) finding {
			return partitionFinding(ctx, db, cfg.Namespace, p)
		})
	}
}

// partitionFinding judges a partition: its projections' lag behind its
// head, and whether a worker holds its lease.
func partitionFinding(ctx context.Context, db *sql.DB, namespace string, p partition.Status) finding {
	readAt, err := projections.NewMySQL(db, namespace).Checkpoint(ctx, p.Partition)
	if err != nil {
		return fail(err.Error(), "")
	}
	lags := []string{fmt.Sprintf("mysql %d", p.Head-readAt)}
	cps := checkpoint.New(namespace)
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
}

// mysqlPrivileges judges what a probe of the privileges found (see
// mysqldb.ProbePrivileges). The scratch table has one name per namespace,
// so that a user who may create but not drop is left with one table, not
// one a run.
func mysqlPrivileges(ctx context.Context, db *sql.DB, namespace, dbName string) finding {
	names := catalog.New(namespace)
	probe := names.DoctorProbe()
	g, err := mysqldb.ProbePrivileges(ctx, db, probe, names.DoctorLock(randomSuffix()))
	if err != nil {
		return fail(err.Error(), "")
	}
	needed := strings.Join(mysqldb.NeededPrivileges(), ", ")
	if len(g.Denied) == 0 && g.LockErr != nil {
		return fail("named locks do not work: "+g.LockErr.Error(),
			"the event store writer and the projectors fence their work with GET_LOCK; connect to MySQL directly, not through a proxy or pooler that does not keep a session's locks")
	}
	if len(g.Denied) == 0 {
		return ok("%s and GET_LOCK work for %s on %s (tried on a scratch table, dropped again)", needed, g.User, dbName)
	}
	denied := make([]string, len(g.Denied))
	for i, d := range g.Denied {
		denied[i] = fmt.Sprintf("%s (%v)", d.Privilege, d.Err)
	}
	detail := "denied: " + strings.Join(denied, "; ")
	if len(g.Untried) > 0 {
		detail += "\nnot tried without CREATE: " + strings.Join(g.Untried, ", ")
	}
	if g.LockErr != nil {
		detail += "\nnamed locks do not work either: " + g.LockErr.Error()
	}
	if g.LeftBehind {
		detail += "\nthe scratch table " + probe + " is left behind; a run with DROP granted removes it"
	}
	return fail(detail, fmt.Sprintf("GRANT %s ON `%s`.* TO %s;\n(migrate needs CREATE and ALTER, replay CREATE, ALTER and DROP, every process SELECT, INSERT, UPDATE and DELETE; the event store writer and the projectors need named locks)",
		needed, dbName, quoteUser(g.User)))
}

// quoteUser turns CURRENT_USER()'s user@host into 'user'@'host'.
func quoteUser(user string) string {
	name, host, found := strings.Cut(user, "@")
	if !found {
		return "'" + user + "'"
	}
	return "'" + name + "'@'" + host + "'"
}
