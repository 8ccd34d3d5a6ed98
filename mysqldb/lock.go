package mysqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrLockLost means a named lock's connection is gone or no longer holds it.
var ErrLockLost = errors.New("named lock lost")

// Lock is a MySQL named lock held by one dedicated connection. Work done on
// Conn is fenced by the lock: if the connection dies, the lock is released
// and that work fails with it, so two holders can never write at once.
type Lock struct {
	Conn *sql.Conn
	name string
}

// AcquireLock waits until this process holds the named lock or ctx ends.
// MySQL limits lock names to 64 characters.
func AcquireLock(ctx context.Context, db *sql.DB, name string) (*Lock, error) {
	for {
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		var got sql.NullInt64
		err = conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 1)", name).Scan(&got)
		if err == nil && got.Int64 == 1 {
			return &Lock{Conn: conn, name: name}, nil
		}
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("take lock %s: %w", name, err)
		}
	}
}

// Check returns ErrLockLost unless the lock is still held by this connection.
func (l *Lock) Check(ctx context.Context) error {
	var mine sql.NullBool
	if err := l.Conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", l.name).Scan(&mine); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrLockLost, l.name, err)
	}
	if !mine.Valid || !mine.Bool {
		return fmt.Errorf("%w: %s", ErrLockLost, l.name)
	}
	return nil
}

// Release gives the lock up and returns the connection to the pool.
func (l *Lock) Release() {
	_, _ = l.Conn.ExecContext(context.Background(), "DO RELEASE_LOCK(?)", l.name)
	_ = l.Conn.Close()
}
