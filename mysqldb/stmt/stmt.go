// Package stmt builds the shapes of MySQL statement that several stores
// share: lists of placeholders, and the rows of a small table, one per
// partition, that a transaction locks in ascending order and then moves in
// one CASE update. It imports no store, so that every store can use it.
package stmt

import (
	"context"
	"database/sql"
	"maps"
	"slices"
	"strings"
)

// Placeholders is n placeholders separated by commas ("?,?,?"), for an IN
// list; n must be at least 1.
func Placeholders(n int) string {
	return "?" + strings.Repeat(",?", n-1)
}

// Tuples is n tuples of width placeholders each ("(?,?),(?,?)"), for a
// multi-row VALUES or a row IN list; width and n must be at least 1.
func Tuples(width, n int) string {
	t := "(" + Placeholders(width) + ")"
	return t + strings.Repeat(","+t, n-1)
}

// Args returns values as a statement's arguments.
func Args[T any](values []T) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}

// Tx runs statements: a transaction, or a pool or connection for a single
// statement.
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// KeyedRows are rows of a small table, one per integer key (a partition),
// that a transaction locks and then moves together: the partitions' heads
// of the event log, the read tables' positions, a projector's checkpoints.
//
// Lock takes the rows in ascending key order, so that two transactions that
// lock some of the same rows never wait for each other in a cycle; both
// statements go by the primary key (FORCE INDEX), because on a table this
// small the optimizer may prefer a scan, which would lock, and wait for,
// every row, other processes' included.
type KeyedRows struct {
	Table string
	// Key is the integer column of the primary key that tells the rows
	// apart.
	Key string
	// Where, if set, picks the rows among those of a key (a condition on
	// the rest of the primary key, such as "name = ?"); Args are its
	// arguments.
	Where string
	Args  []any
}

// where is the condition on the rows of n keys.
func (k KeyedRows) where(n int) string {
	w := k.Key + " IN (" + Placeholders(n) + ")"
	if k.Where != "" {
		w = k.Where + " AND " + w
	}
	return " WHERE " + w
}

// Lock selects cols of the rows of keys and locks them until tx ends,
// calling scan on each row. A key without a row is not scanned.
func (k KeyedRows) Lock(ctx context.Context, tx Tx, cols string, keys []int, scan func(*sql.Rows) error) error {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	if len(keys) == 0 {
		return nil
	}
	args := append(slices.Clone(k.Args), Args(keys)...)
	rows, err := tx.QueryContext(ctx, "SELECT "+cols+" FROM "+k.Table+" FORCE INDEX (PRIMARY)"+k.where(len(keys))+
		" ORDER BY "+k.Key+" FOR UPDATE", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Update sets the rows of values' keys in one statement. set is the
// statement's SET clause, in which {value} stands for each row's value
// (a CASE on the key): "head = {value}", or "position = GREATEST(position,
// {value}), updated_at = UTC_TIMESTAMP(6)".
func (k KeyedRows) Update(ctx context.Context, tx Tx, set string, values map[int]int64) error {
	if len(values) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(values))
	args := make([]any, 0, 3*len(keys)+len(k.Args))
	for _, key := range keys {
		args = append(args, key, values[key])
	}
	args = append(args, k.Args...)
	args = append(args, Args(keys)...)
	value := "CASE " + k.Key + strings.Repeat(" WHEN ? THEN ?", len(keys)) + " END"
	_, err := tx.ExecContext(ctx, "UPDATE "+k.Table+" FORCE INDEX (PRIMARY) SET "+strings.Replace(set, "{value}", value, 1)+k.where(len(keys)), args...)
	return err
}
