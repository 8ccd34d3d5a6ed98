package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/chatsys/chat/events"
)

// Status is what became of one record handed to Append.
type Status int

const (
	Appended  Status = iota // stored now
	Duplicate               // already stored: a redelivery, safe to acknowledge
	Conflict                // another event holds its stream version: never stored
)

// ErrFenced means the appender's lease on its partition is gone: another
// writer took the partition over (this one was paused or cut off past its
// lease), so nothing was stored and nothing more may be.
var ErrFenced = errors.New("partition taken over by another writer")

// Appender is the one writer of a partition of the event log. The append
// transaction locks the partition's row and checks the fencing epoch of the
// lease the appender was given, so a writer that lost its lease cannot
// append even when it resumes after a long pause; positions are assigned
// under that row lock, one after the partition's head, with no gap.
type Appender struct {
	db         *sql.DB
	table      string
	partitions string
	partition  int
	epoch      int64
}

// Appender returns the appender of a partition for the holder of its lease
// with the given fencing epoch.
func (s *Store) Appender(partition int, epoch int64) *Appender {
	return &Appender{db: s.db, table: s.table, partitions: s.partitions, partition: partition, epoch: epoch}
}

// Partition is the partition the appender writes.
func (a *Appender) Partition() int { return a.partition }

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
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var (
		head  int64
		epoch int64
	)
	if err := tx.QueryRowContext(ctx, "SELECT head, epoch FROM "+a.partitions+" WHERE partition_id = ? FOR UPDATE", a.partition).Scan(&head, &epoch); err != nil {
		return nil, fmt.Errorf("lock partition %d: %w", a.partition, err)
	}
	if epoch != a.epoch {
		return nil, fmt.Errorf("%w: partition %d is at epoch %d, this writer's is %d", ErrFenced, a.partition, epoch, a.epoch)
	}
	err = insert(ctx, tx, a.table, a.partition, head, pick(recs, fresh))
	stored := len(fresh)
	if isDuplicateKey(err) {
		// Some records collide with stored ones or with each other (rare:
		// a redelivery or a conflict). The failed statement is undone,
		// not the transaction: sort them out, and store the rest.
		stored, err = a.sortOut(ctx, tx, recs, fresh, status, head)
	}
	if err != nil {
		return nil, err
	}
	if stored > 0 {
		if _, err := tx.ExecContext(ctx, "UPDATE "+a.partitions+" SET head = ? WHERE partition_id = ?", head+int64(stored), a.partition); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return status, nil
}

// sortOut marks the records of fresh that are stored already (duplicates)
// or whose stream version another event holds (conflicts), stores the rest
// after head, and returns how many it stored.
func (a *Appender) sortOut(ctx context.Context, tx *sql.Tx, recs []events.Record, fresh []int, status []Status, head int64) (int, error) {
	ids, taken, err := existing(ctx, tx, a.table, pick(recs, fresh))
	if err != nil {
		return 0, err
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
	return len(rest), insert(ctx, tx, a.table, a.partition, head, pick(recs, rest))
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

// existing returns which of the records' event ids are stored, and which
// event owns each stored version of their streams.
func existing(ctx context.Context, tx *sql.Tx, table string, recs []events.Record) (map[uuid.UUID]bool, map[streamKey]uuid.UUID, error) {
	var q strings.Builder
	args := make([]any, 0, 2*len(recs))
	q.WriteString("SELECT event_id, stream_id, stream_version FROM " + table + " WHERE event_id IN (")
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
	rows, err := tx.QueryContext(ctx, q.String(), args...)
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
