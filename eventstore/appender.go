package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"database/sql/driver"
	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/mysqldb"
)

// Status is what became of one record handed to Append.
type Status int

const (
	Appended  Status = iota // stored now
	Duplicate               // already stored: a redelivery, safe to acknowledge
	Conflict                // another event holds its stream version: never stored
)

// Appender is the one writer of the event log. It holds a MySQL named lock
// and appends on the lock's own connection, so a writer that lost its lock
// cannot append at all.
type Appender struct {
	lock  *mysqldb.Lock
	conn  *sql.Conn
	table string
}

// Acquire waits until this process holds the append lock, or ctx ends.
func (s *Store) Acquire(ctx context.Context) (*Appender, error) {
	lock, err := mysqldb.AcquireLock(ctx, s.db, s.lockName)
	if err != nil {
		return nil, err
	}
	return &Appender{lock: lock, conn: lock.Conn, table: s.table}, nil
}

// Check fails with mysqldb.ErrLockLost unless the lock is still held.
func (a *Appender) Check(ctx context.Context) error { return a.lock.Check(ctx) }

// Release gives the lock up.
func (a *Appender) Release() { a.lock.Release() }

// Append stores the records that are not stored yet, in one transaction, and
// says for each what became of it. An event id already stored is a duplicate
// (a redelivery); a different event claiming a stream version that is stored,
// or taken by an earlier record of the batch, is a conflict and is not
// stored. An error means nothing was stored.
func (a *Appender) Append(ctx context.Context, recs []events.Record) ([]Status, error) {
	status := make([]Status, len(recs))
	fresh := make([]int, 0, len(recs))
	seen := make(map[uuid.UUID]bool, len(recs))
	for i, r := range recs {
		if seen[r.EventID] {
			status[i] = Duplicate
			continue
		}
		seen[r.EventID] = true
		fresh = append(fresh, i)
	}
	err := a.insert(ctx, pick(recs, fresh))
	if err == nil {
		return status, nil
	}
	if !isDuplicateKey(err) {
		return nil, a.wrap(err)
	}
	// Some records collide with stored ones or with each other (rare: a
	// redelivery or a conflict). Sort them out, and store the rest.
	ids, taken, err := a.existing(ctx, pick(recs, fresh))
	if err != nil {
		return nil, a.wrap(err)
	}
	var rest []int
	for _, i := range fresh {
		r := recs[i]
		k := streamKey{r.StreamID, r.StreamVersion}
		switch owner, ok := taken[k]; {
		case ids[r.EventID]:
			status[i] = Duplicate
		case ok && owner != r.EventID:
			status[i] = Conflict
		default:
			taken[k] = r.EventID
			rest = append(rest, i)
		}
	}
	if err := a.insert(ctx, pick(recs, rest)); err != nil {
		return nil, a.wrap(err)
	}
	return status, nil
}

func pick(recs []events.Record, idx []int) []events.Record {
	out := make([]events.Record, len(idx))
	for j, i := range idx {
		out[j] = recs[i]
	}
	return out
}

type streamKey struct {
	stream  string
	version int64
}

func (a *Appender) insert(ctx context.Context, recs []events.Record) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := a.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := insert(ctx, tx, a.table, recs); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// existing returns which of the records' event ids are stored, and which
// event owns each stored version of their streams.
func (a *Appender) existing(ctx context.Context, recs []events.Record) (map[uuid.UUID]bool, map[streamKey]uuid.UUID, error) {
	var q strings.Builder
	args := make([]any, 0, 2*len(recs))
	q.WriteString("SELECT event_id, stream_id, stream_version FROM " + a.table + " WHERE event_id IN (")
	for i, r := range recs {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('?')
		args = append(args, r.EventID[:])
	}
	q.WriteString(") OR stream_id IN (")
	for i, r := range recs {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('?')
		args = append(args, r.StreamID)
	}
	q.WriteString(")")
	rows, err := a.conn.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	ids := map[uuid.UUID]bool{}
	versions := map[streamKey]uuid.UUID{}
	for rows.Next() {
		var (
			raw []byte
			k   streamKey
		)
		if err := rows.Scan(&raw, &k.stream, &k.version); err != nil {
			return nil, nil, err
		}
		id, err := uuid.FromBytes(raw)
		if err != nil {
			return nil, nil, err
		}
		ids[id] = true
		versions[k] = id
	}
	return ids, versions, rows.Err()
}

func isDuplicateKey(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// wrap marks an error on a broken connection as a lost lock: the named lock
// lives and dies with the connection.
func (a *Appender) wrap(err error) error {
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) {
		return fmt.Errorf("%w: %w", mysqldb.ErrLockLost, err)
	}
	return err
}
