// Package mysqldb opens the MySQL connection pool and owns the schema: the
// embedded migrations of the event store and the read tables. It also
// reports what the server is and grants, for a check of the deployment.
package mysqldb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/eventstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrNotMigrated means the database lacks migrations this build needs.
var ErrNotMigrated = errors.New("database schema is not up to date; run `chat migrate`")

// Open returns a pool capped at maxConns connections. It does not connect.
func Open(dsn string, maxConns int) (*sql.DB, error) {
	return OpenWith(dsn, maxConns, nil)
}

// OpenWith is Open with session variables set on every connection.
func OpenWith(dsn string, maxConns int, session map[string]string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse MySQL DSN: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true // one round trip per statement instead of prepare+execute
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	for k, v := range session {
		cfg.Params[k] = v
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// IdleTransactionTimeout is the session variable by which MariaDB ends a
// connection left idle inside a transaction, releasing its locks.
const IdleTransactionTimeout = "idle_transaction_timeout"

// HasVariable reports whether the server knows a system variable (MariaDB's
// idle_transaction_timeout is not MySQL's).
func HasVariable(ctx context.Context, db *sql.DB, name string) bool {
	var v sql.NullString
	return db.QueryRowContext(ctx, "SELECT @@"+name).Scan(&v) == nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations(namespace string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		body, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{v, e.Name(), strings.ReplaceAll(string(body), "{{ns}}", namespace)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// statements splits a migration into statements at semicolons that end a
// line; migrations hold no procedures, so this is enough.
func statements(sqlText string) []string {
	var out []string
	var cur []string
	for _, line := range strings.Split(sqlText, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur = append(cur, line)
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.Join(cur, "\n"), ";"))
			cur = nil
		}
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, "\n"))
	}
	return out
}

// CreateDatabase creates the DSN's database when it does not exist.
func CreateDatabase(ctx context.Context, dsn string) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return err
	}
	name := cfg.DBName
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+strings.ReplaceAll(name, "`", "``")+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	return err
}

// Migrate applies the migrations a namespace lacks, under a named lock so
// that several processes may run it at once. It returns how many it applied.
// A namespace migrated for the first time gets partitions partitions of the
// event log, fixed from then on; one whose log was written before
// partitions existed gets one, which holds that log.
func Migrate(ctx context.Context, db *sql.DB, namespace string, partitions int) (int, error) {
	if partitions < 1 {
		return 0, fmt.Errorf("partitions must be at least 1, not %d", partitions)
	}
	ms, err := migrations(namespace)
	if err != nil {
		return 0, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	names := catalog.New(namespace)
	lock := names.MigrateLock()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 60)", lock).Scan(&got); err != nil {
		return 0, err
	}
	if got.Int64 != 1 {
		return 0, fmt.Errorf("another migration holds lock %s", lock)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(?)", lock)

	table := names.SchemaMigrations()
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+table+
		" (version INT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"); err != nil {
		return 0, err
	}
	applied, err := appliedVersions(ctx, conn, table)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		for _, stmt := range statements(m.sql) {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return n, fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO "+table+" (version, name) VALUES (?, ?)", m.version, m.name); err != nil {
			return n, err
		}
		n++
	}
	return n, setUpPartitions(ctx, conn, names, partitions)
}

// setUpPartitions writes the partitions' rows, and the read tables' position
// of each, when the namespace has none.
func setUpPartitions(ctx context.Context, conn *sql.Conn, names catalog.Catalog, partitions int) error {
	var have int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+names.Partitions()).Scan(&have); err != nil || have > 0 {
		return err
	}
	head, err := eventstore.LastPosition(ctx, conn, names.Namespace())
	if err != nil {
		return err
	}
	if head > 0 {
		partitions = 1
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for p := range partitions {
		h := int64(0)
		if p == 0 {
			h = head
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+names.Partitions()+" (partition_id, head) VALUES (?, ?)", p, h); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO "+names.ReadTables().Position+" (id, position) VALUES (?, 0)", p); err != nil {
			return err
		}
	}
	return tx.Commit()
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func appliedVersions(ctx context.Context, q querier, table string) (map[int]bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT version FROM "+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out[v] = true
	}
	return out, rows.Err()
}

// CheckMigrated returns ErrNotMigrated when a migration of this build has not
// been applied to the namespace.
func CheckMigrated(ctx context.Context, db *sql.DB, namespace string) error {
	ms, err := migrations(namespace)
	if err != nil {
		return err
	}
	applied, err := appliedVersions(ctx, db, catalog.New(namespace).SchemaMigrations())
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1146 || me.Number == 1049) { // no such table / database
			return ErrNotMigrated
		}
		return err
	}
	for _, m := range ms {
		if !applied[m.version] {
			return fmt.Errorf("%w (missing %s)", ErrNotMigrated, m.name)
		}
	}
	return nil
}
