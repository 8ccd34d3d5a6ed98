package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/mysqldb/stmt"
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
	erasures   string
	partition  int
	epoch      int64
}

// Appender returns the appender of a partition for the holder of its lease
// with the given fencing epoch.
func (s *Store) Appender(partition int, epoch int64) *Appender {
	return &Appender{db: s.db, table: s.table, partitions: s.partitions, erasures: s.erasures, partition: partition, epoch: epoch}
}

// Partition is the partition the appender writes.
func (a *Appender) Partition() int { return a.partition }

// Append stores the records that are not stored yet, in one transaction, and
// says for each what became of it. An event id already stored is a duplicate
// (a redelivery); a different event claiming a stream version that is stored,
// or taken by an earlier record of the batch, is a conflict and is not
// stored. An error means nothing was stored.
func (a *Appender) Append(ctx context.Context, recs []events.Record) ([]Status, error) {
	res, err := a.store().AppendAll(ctx, []Batch{{Appender: a, Records: recs}})
	if err != nil {
		return nil, err
	}
	return res[0].Status, nil
}

func (a *Appender) store() *Store {
	return &Store{db: a.db, table: a.table, partitions: a.partitions, erasures: a.erasures}
}

// Batch is records for one partition, handed to its appender.
type Batch struct {
	Appender *Appender
	Records  []events.Record
}

// Result is what became of a batch: a status per record, and the records
// stored, in position order, as a read of the log would return them (their
// recorded time is the commit's, to the millisecond of the database's).
type Result struct {
	Status []Status
	Stored []Stored
}

// AppendAll appends batches of distinct partitions in one transaction, as
// Append does each: a process that writes many partitions pays one commit
// for all of them. It locks the partitions' rows in ascending order (so two
// writers never deadlock on them) and checks every appender's fencing
// epoch; if any partition was taken over, the error wraps ErrFenced. If a
// record of several batches collides with a stored one (a redelivery or a
// conflict, which are rare), the error is ErrCollision: such batches are
// appended one at a time, where the collisions are sorted out. It returns
// each batch's result; an error means nothing was stored.
func (s *Store) AppendAll(ctx context.Context, batches []Batch) ([]Result, error) {
	status := make([][]Status, len(batches))
	fresh := make([][]int, len(batches))
	for b, batch := range batches {
		status[b], fresh[b] = dedupe(batch.Records)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	heads, err := s.lock(ctx, tx, batches)
	if err != nil {
		return nil, err
	}
	pieces := make([]piece, len(batches))
	for b, batch := range batches {
		pieces[b] = piece{partition: batch.Appender.partition, head: heads[b], recs: pick(batch.Records, fresh[b])}
	}
	err = insert(ctx, tx, s.table, pieces)
	if isDuplicateKey(err) {
		if len(batches) > 1 {
			return nil, ErrCollision
		}
		// The failed statement is undone, not the transaction: sort the
		// records out, and store the rest. (Only within one partition:
		// a statement that spans the shards of a sharded database may not
		// be undone on all of them.)
		if pieces[0], err = s.sortOut(ctx, tx, batches[0], fresh[0], status[0], heads[0]); err == nil {
			err = insert(ctx, tx, s.table, pieces)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.erase(ctx, tx, pieces); err != nil {
		return nil, fmt.Errorf("erase deleted messages: %w", err)
	}
	if err := s.moveHeads(ctx, tx, pieces); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	committed := time.Now().UTC()
	out := make([]Result, len(batches))
	for b, p := range pieces {
		stored := make([]Stored, len(p.recs))
		for i, r := range p.recs {
			stored[i] = Stored{Partition: p.partition, Position: p.head + 1 + int64(i), RecordedAt: committed, Record: r}
		}
		out[b] = Result{Status: status[b], Stored: stored}
	}
	return out, nil
}

// ErrCollision means that records of batches of several partitions collide
// with stored ones, and nothing was stored: append the batches one at a
// time.
var ErrCollision = errors.New("records collide with stored ones: append the partitions' batches one at a time")

// dedupe marks the records whose event id comes earlier in the batch as
// duplicates and returns the indexes of the others.
func dedupe(recs []events.Record) ([]Status, []int) {
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
	return status, fresh
}

// lock locks the batches' partition rows in ascending order, checks each
// appender's epoch, and returns each batch's partition head.
func (s *Store) lock(ctx context.Context, tx *sql.Tx, batches []Batch) ([]int64, error) {
	parts := make([]int, len(batches))
	for b, batch := range batches {
		parts[b] = batch.Appender.partition
	}
	type row struct{ head, epoch int64 }
	locked := make(map[int]row, len(batches))
	err := s.heads().Lock(ctx, tx, "partition_id, head, epoch", parts, func(rows *sql.Rows) error {
		var (
			p int
			r row
		)
		if err := rows.Scan(&p, &r.head, &r.epoch); err != nil {
			return err
		}
		locked[p] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lock partitions: %w", err)
	}
	heads := make([]int64, len(batches))
	for b, batch := range batches {
		a := batch.Appender
		r, ok := locked[a.partition]
		switch {
		case !ok:
			return nil, fmt.Errorf("lock partition %d: %w", a.partition, sql.ErrNoRows)
		case r.epoch != a.epoch:
			return nil, fmt.Errorf("%w: partition %d is at epoch %d, this writer's is %d", ErrFenced, a.partition, r.epoch, a.epoch)
		}
		heads[b] = r.head
	}
	return heads, nil
}

// heads are the partitions' rows, which an append locks and moves. Locked
// by primary key only: a scan would lock every partition's row, and every
// other writer's append and renewal would wait for this one.
func (s *Store) heads() stmt.KeyedRows {
	return stmt.KeyedRows{Table: s.partitions, Key: "partition_id"}
}

// moveHeads moves each partition's head past what was inserted, in one
// statement.
func (s *Store) moveHeads(ctx context.Context, tx *sql.Tx, pieces []piece) error {
	to := make(map[int]int64, len(pieces))
	for _, p := range pieces {
		if len(p.recs) > 0 {
			to[p.partition] = p.head + int64(len(p.recs))
		}
	}
	return s.heads().Update(ctx, tx, "head = {value}", to)
}

// sortOut marks the records of fresh that are stored already (duplicates)
// or whose stream version another event holds (conflicts), and returns
// the rest as the piece to store after head.
func (s *Store) sortOut(ctx context.Context, tx *sql.Tx, batch Batch, fresh []int, status []Status, head int64) (piece, error) {
	recs := batch.Records
	p := piece{partition: batch.Appender.partition, head: head}
	if len(fresh) == 0 {
		return p, nil
	}
	ids, taken, err := existing(ctx, tx, s.table, pick(recs, fresh))
	if err != nil {
		return p, err
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
	p.recs = pick(recs, rest)
	return p, nil
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
	args := make([]any, 0, 2*len(recs))
	for _, r := range recs {
		args = append(args, r.EventID[:])
	}
	for _, r := range recs {
		args = append(args, r.StreamID)
	}
	q := "SELECT event_id, stream_id, stream_version FROM " + table + " WHERE event_id IN (" + stmt.Placeholders(len(recs)) +
		") OR stream_id IN (" + stmt.Placeholders(len(recs)) + ")"
	rows, err := tx.QueryContext(ctx, q, args...)
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
