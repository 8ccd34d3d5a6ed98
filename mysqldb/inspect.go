package mysqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Target is where a DSN points.
type Target struct {
	Addr     string // the server's host:port
	User     string
	Database string
}

// ParseTarget reads where dsn points.
func ParseTarget(dsn string) (Target, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return Target{}, err
	}
	return Target{Addr: cfg.Addr, User: cfg.User, Database: cfg.DBName}, nil
}

// OpenServer is Open on dsn's server without naming its database, so that
// a missing database can be told apart from a server that is down.
func OpenServer(dsn string, maxConns int) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	server := cfg.Clone()
	server.DBName = ""
	return Open(server.FormatDSN(), maxConns)
}

// ServerVersion returns the version the server reports. Its error is the
// driver's, which names what the server refused (IsAccessDenied).
func ServerVersion(ctx context.Context, db *sql.DB) (string, error) {
	var version string
	err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version)
	return version, err
}

// IsAccessDenied reports the server refusing the user or its password.
func IsAccessDenied(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1045 || me.Number == 1698)
}

// DatabaseExists reports whether the server has the database, as far as
// the user may see it.
func DatabaseExists(ctx context.Context, db *sql.DB, name string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n)
	return n > 0, err
}

// NeededPrivileges are what the processes need on the database: migrate
// creates and alters tables, replay creates, renames and drops them, and
// every process reads and writes rows.
func NeededPrivileges() []string {
	return []string{"CREATE", "ALTER", "DROP", "SELECT", "INSERT", "UPDATE", "DELETE"}
}

// Grants is what a privilege probe found the user may do.
type Grants struct {
	User    string   // CURRENT_USER(): user@host, as the server matched it
	Denied  []Denial // in the order tried
	Untried []string // privileges not tried, as CREATE was denied
	// LeftBehind is set when the scratch table was created but DROP
	// failed: it may remain.
	LeftBehind bool
	// LockErr is why a named lock could not be taken, nil when it could.
	LockErr error
}

// Denial is a privilege the server refused, with its refusal.
type Denial struct {
	Privilege string
	Err       error
}

// ProbePrivileges tries each of NeededPrivileges on a scratch table,
// created and dropped again, and takes the named lock: it finds what the
// server lets this user do, however the grants are spelt (roles,
// wildcards, MySQL or MariaDB). A statement that fails otherwise than by a
// missing privilege is an error.
func ProbePrivileges(ctx context.Context, db *sql.DB, table, lock string) (Grants, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return Grants{}, err
	}
	defer conn.Close()
	var g Grants
	if err := conn.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&g.User); err != nil {
		return Grants{}, err
	}
	if err := probeTable(ctx, conn, table, &g); err != nil {
		return Grants{}, err
	}
	g.LockErr = probeLock(ctx, conn, lock)
	return g, nil
}

// probeTable runs a statement of each privilege on table, noting in g what
// was denied.
func probeTable(ctx context.Context, conn *sql.Conn, table string, g *Grants) error {
	created := false
	for _, step := range []struct{ privilege, stmt string }{
		{"CREATE", "CREATE TABLE IF NOT EXISTS " + table + " (id INT NOT NULL PRIMARY KEY, v INT NULL) ENGINE=InnoDB"},
		{"ALTER", "ALTER TABLE " + table + " COMMENT = 'chat doctor: privilege probe'"},
		{"DELETE", "DELETE FROM " + table},
		{"INSERT", "INSERT INTO " + table + " (id, v) VALUES (1, 1)"},
		{"SELECT", "SELECT COUNT(*) FROM " + table},
		{"UPDATE", "UPDATE " + table + " SET v = 2 WHERE id = 1"},
		{"DROP", "DROP TABLE " + table},
	} {
		if step.privilege != "CREATE" && !created {
			g.Untried = append(g.Untried, step.privilege)
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
			if !errors.As(err, &me) || !privilegeDenied(me.Number) {
				return fmt.Errorf("probing %s: %w", step.privilege, err)
			}
			g.Denied = append(g.Denied, Denial{step.privilege, err})
		}
	}
	if created {
		// DROP was denied or failed: leave no scratch table behind if at all possible.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_, _ = conn.ExecContext(cleanup, "DROP TABLE IF EXISTS "+table)
		cancel()
		g.LeftBehind = true
	}
	return nil
}

// privilegeDenied reports the error numbers of a missing privilege: on a
// table, a column, a database, or a global one.
func privilegeDenied(number uint16) bool {
	switch number {
	case 1142, 1143, 1044, 1227:
		return true
	}
	return false
}

// probeLock takes a free named lock and releases it again.
func probeLock(ctx context.Context, conn *sql.Conn, lock string) error {
	var got sql.NullInt64
	err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", lock).Scan(&got)
	if err == nil && got.Int64 != 1 {
		err = fmt.Errorf("GET_LOCK of a free lock returned %v", got)
	}
	if err == nil {
		_, _ = conn.ExecContext(ctx, "DO RELEASE_LOCK(?)", lock)
	}
	return err
}
