// Package checkpoint keeps named positions in the event log's partitions
// (<ns>_checkpoints): how far each projector, or a replay's copy, has
// applied each partition, and the flags by which a replay pauses a live
// projector (kept at partition 0).
package checkpoint

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/mysqldb/stmt"
)

// DB runs statements: a pool, a connection or a transaction. A projector
// passes the connection that holds its named lock, so that a projector that
// lost its lock cannot move a checkpoint.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store reads and writes the checkpoints of a namespace.
type Store struct {
	table string
	names catalog.Catalog
}

// New returns the checkpoints of a namespace.
func New(namespace string) *Store {
	names := catalog.New(namespace)
	return &Store{table: names.Checkpoints(), names: names}
}

// Ensure returns a checkpoint's position in a partition, creating it at 0 when it does not
// exist.
func (s *Store) Ensure(ctx context.Context, db DB, name string, partition int) (int64, error) {
	if _, err := db.ExecContext(ctx, "INSERT IGNORE INTO "+s.table+" (partition_id, name, position) VALUES (?, ?, 0)", partition, name); err != nil {
		return 0, err
	}
	var pos int64
	err := db.QueryRowContext(ctx, "SELECT position FROM "+s.table+" WHERE partition_id = ? AND name = ?", partition, name).Scan(&pos)
	return pos, err
}

// Get returns a checkpoint's position, 0 when it does not exist.
func (s *Store) Get(ctx context.Context, db DB, name string, partition int) (int64, error) {
	var pos int64
	err := db.QueryRowContext(ctx, "SELECT position FROM "+s.table+" WHERE partition_id = ? AND name = ?", partition, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return pos, err
}

// Lock reads a checkpoint's position in a transaction and locks its row
// until the transaction ends, creating it at 0 when it does not exist.
func (s *Store) Lock(ctx context.Context, tx DB, name string, partition int) (int64, error) {
	if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO "+s.table+" (partition_id, name, position) VALUES (?, ?, 0)", partition, name); err != nil {
		return 0, err
	}
	var pos int64
	err := tx.QueryRowContext(ctx, "SELECT position FROM "+s.table+" WHERE partition_id = ? AND name = ? FOR UPDATE", partition, name).Scan(&pos)
	return pos, err
}

// LockAll is Lock of a checkpoint in several partitions, in two statements
// whatever their number. It returns the positions by partition; the rows
// are locked as stmt.KeyedRows.Lock does.
func (s *Store) LockAll(ctx context.Context, tx DB, name string, partitions []int) (map[int]int64, error) {
	parts := slices.Compact(slices.Sorted(slices.Values(partitions)))
	if len(parts) == 0 {
		return map[int]int64{}, nil
	}
	args := make([]any, 0, 3*len(parts))
	for _, p := range parts {
		args = append(args, p, name, 0)
	}
	if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO "+s.table+" (partition_id, name, position) VALUES "+
		stmt.Tuples(3, len(parts)), args...); err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(parts))
	err := s.named(name).Lock(ctx, tx, "partition_id, position", parts, func(rows *sql.Rows) error {
		var (
			p   int
			pos int64
		)
		if err := rows.Scan(&p, &pos); err != nil {
			return err
		}
		out[p] = pos
		return nil
	})
	return out, err
}

// named is the rows of a checkpoint, one per partition.
func (s *Store) named(name string) stmt.KeyedRows {
	return stmt.KeyedRows{Table: s.table, Key: "partition_id", Where: "name = ?", Args: []any{name}}
}

// Advance moves an existing checkpoint to pos, never back: re-applying an
// older batch leaves it where it is.
func (s *Store) Advance(ctx context.Context, db DB, name string, partition int, pos int64) error {
	_, err := db.ExecContext(ctx, "UPDATE "+s.table+" SET position = GREATEST(position, ?), updated_at = UTC_TIMESTAMP(6) WHERE partition_id = ? AND name = ?", pos, partition, name)
	return err
}

// AdvanceAll is Advance of a checkpoint in several partitions in one
// statement, so all of them move or none: positions holds each partition's
// position.
func (s *Store) AdvanceAll(ctx context.Context, db DB, name string, positions map[int]int64) error {
	return s.named(name).Update(ctx, db, "position = GREATEST(position, {value}), updated_at = UTC_TIMESTAMP(6)", positions)
}

// Set puts a checkpoint at pos, whichever way that moves it, creating it
// when it does not exist: a replay hands its copy's position to the live
// projector this way.
func (s *Store) Set(ctx context.Context, db DB, name string, partition int, pos int64) error {
	_, err := db.ExecContext(ctx, "INSERT INTO "+s.table+" (partition_id, name, position) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE position = VALUES(position)", partition, name, pos)
	return err
}

// Reset puts a checkpoint at 0, creating it when it does not exist.
func (s *Store) Reset(ctx context.Context, db DB, name string, partition int) error {
	_, err := db.ExecContext(ctx, "REPLACE INTO "+s.table+" (partition_id, name, position) VALUES (?, ?, 0)", partition, name)
	return err
}

// Delete removes a checkpoint.
func (s *Store) Delete(ctx context.Context, db DB, name string, partition int) error {
	_, err := db.ExecContext(ctx, "DELETE FROM "+s.table+" WHERE partition_id = ? AND name = ?", partition, name)
	return err
}

// pauseFlag is the row by which a replay pauses a projection; a position
// above 0 means paused.
func pauseFlag(projection string) string { return projection + ".pause" }

// Pause asks the live projector of a projection to stand aside for a
// replay. The flag counts only while the replay holds its lock (see Paused).
func (s *Store) Pause(ctx context.Context, db DB, projection string) error {
	_, err := db.ExecContext(ctx, "REPLACE INTO "+s.table+" (partition_id, name, position) VALUES (0, ?, 1)", pauseFlag(projection))
	return err
}

// Resume clears the flag Pause set.
func (s *Store) Resume(ctx context.Context, db DB, projection string) error {
	return s.Delete(ctx, db, pauseFlag(projection), 0)
}

// Paused reports whether a replay has paused a projection: the flag is set
// and the projection's replay lock is held, so that a replay that died
// cannot leave the projector paused.
func (s *Store) Paused(ctx context.Context, db DB, projection string) (bool, error) {
	var p bool
	err := db.QueryRowContext(ctx, "SELECT COALESCE((SELECT position FROM "+s.table+" WHERE partition_id = 0 AND name = ?), 0) > 0 AND IS_USED_LOCK(?) IS NOT NULL",
		pauseFlag(projection), s.names.ReplayLock(projection)).Scan(&p)
	return p, err
}
