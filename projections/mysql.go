package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/mysqldb/stmt"
)

// MySQL projects events into the read tables. Every statement is an upsert
// guarded by stream version, so the fold gives the same rows whatever order
// events of different streams were stored in; the partitions' positions move
// in the same transaction, so each event is applied exactly once.
type MySQL struct {
	db *sql.DB
	t  catalog.ReadTables
	// positions are the rows of <ns>_read_position, one per partition.
	positions stmt.KeyedRows
}

// NewMySQL returns the MySQL projection of a namespace, into the read
// tables of db.
func NewMySQL(db *sql.DB, namespace string) *MySQL {
	return newMySQLInto(db, catalog.New(namespace).ReadTables())
}

// newMySQLInto returns the projection into another set of read tables (a
// replay builds one).
func newMySQLInto(db *sql.DB, t catalog.ReadTables) *MySQL {
	return &MySQL{db: db, t: t, positions: stmt.KeyedRows{Table: t.Position, Key: "id"}}
}

// Name implements Projection.
func (*MySQL) Name() string { return "mysql" }

// Checkpoint implements Projection.
func (m *MySQL) Checkpoint(ctx context.Context, partition int) (int64, error) {
	var pos int64
	err := m.db.QueryRowContext(ctx, "SELECT position FROM "+m.t.Position+" WHERE id = ?", partition).Scan(&pos)
	return pos, err
}

// Apply implements Projection: all the batches in one transaction.
func (m *MySQL) Apply(ctx context.Context, batches [][]Event) error {
	batches, parts, err := distinct(batches)
	if err != nil || len(batches) == 0 {
		return err
	}
	// A transaction the server undid for a lock (a deadlock with a
	// replay's checkpoint writes, say) runs again at once, rather than
	// failing the round and leaving the partitions to the runner's next
	// try a second later.
	return mysqldb.Retried(ctx, func(ctx context.Context) error { return m.apply(ctx, batches, parts) })
}

// apply applies distinct batches of the partitions parts (ascending) in
// one transaction.
func (m *MySQL) apply(ctx context.Context, batches [][]Event, parts []int) error {
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	at, err := m.lock(ctx, tx, parts)
	if err != nil {
		return err
	}
	var p plan
	to := map[int]int64{}
	for _, batch := range batches {
		last, err := p.addBatch(batch, at[batch[0].Partition])
		if err != nil {
			return err
		}
		if last > 0 {
			to[batch[0].Partition] = last
		}
	}
	if len(to) == 0 {
		return nil // applied already
	}
	if err := p.exec(ctx, tx, m); err != nil {
		return ofRows(err)
	}
	if err := m.move(ctx, tx, to); err != nil {
		return err
	}
	return tx.Commit()
}

// lock reads the positions of partitions and locks their rows (see
// stmt.KeyedRows). The row lock makes a second projector of a partition
// (a writer that lost its lease and has not noticed yet) wait instead of
// applying the same batch twice.
func (m *MySQL) lock(ctx context.Context, tx *sql.Tx, parts []int) (map[int]int64, error) {
	at := make(map[int]int64, len(parts))
	err := m.positions.Lock(ctx, tx, "id, position", parts, func(rows *sql.Rows) error {
		var (
			part int
			pos  int64
		)
		if err := rows.Scan(&part, &pos); err != nil {
			return err
		}
		at[part] = pos
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, part := range parts {
		if _, ok := at[part]; !ok {
			return nil, ofBatch(fmt.Errorf("the position of partition %d: %w", part, sql.ErrNoRows))
		}
	}
	return at, nil
}

// move sets the partitions' positions (to, by partition) in one statement.
func (m *MySQL) move(ctx context.Context, tx *sql.Tx, to map[int]int64) error {
	return m.positions.Update(ctx, tx, "position = {value}, updated_at = UTC_TIMESTAMP(6)", to)
}

// ofRows marks as concerning some batches only an error the server gave
// about the rows a statement carried (SQLSTATE class 22, a data exception,
// or 23, an integrity constraint): one partition's events may cause it,
// and the others need not wait for them. Any other error (a lost
// connection, a deadlock) concerns all the batches alike.
func ofRows(err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && (string(me.SQLState[:2]) == "22" || string(me.SQLState[:2]) == "23") {
		return ofBatch(err)
	}
	return err
}

// Versioned upserts: a row takes an event's values only if the event is
// newer than what it holds; version is assigned last because MySQL evaluates
// ON DUPLICATE KEY UPDATE assignments left to right.
const versioned = ` ON DUPLICATE KEY UPDATE
  %s = IF(VALUES(version) > version, VALUES(%s), %s),
  updated_at = IF(VALUES(version) > version, VALUES(updated_at), updated_at),
  created_at = COALESCE(created_at, VALUES(created_at)),
  version = GREATEST(version, VALUES(version))`

func versionedUpdate(field string) string {
	return strings.ReplaceAll(versioned, "%s", field)
}

// messageUpdate is the versioned upsert of a message, whose position moves
// to every event applied to it, whatever its version: an edit stored
// before its create leaves a row that reads skip, and the create that
// later makes it readable must move it past the cursors that passed the
// edit. Events are applied in position order, so GREATEST is the last.
// A deleted row keeps no body, whatever comes after its delete.
func messageUpdate() string {
	u := strings.Replace(versionedUpdate("body"), "\n  version =", "\n  position = GREATEST(position, VALUES(position)),\n  version =", 1)
	return strings.Replace(u, "body = IF(VALUES(version) > version, VALUES(body), body),",
		"body = IF(deleted_at IS NOT NULL, '', IF(VALUES(version) > version, VALUES(body), body)),", 1)
}

const countUpdate = ` ON DUPLICATE KEY UPDATE %[1]s = %[1]s + VALUES(%[1]s), %[2]s = GREATEST(%[2]s, VALUES(%[2]s))`

func (p *plan) exec(ctx context.Context, tx *sql.Tx, m *MySQL) error {
	const messageColumns = " (token, chat_number, number, body, version, created_at, updated_at, position) VALUES "
	if _, err := upsert(ctx, tx, "INSERT INTO "+m.t.Applications+" (token, name, version, created_at, updated_at) VALUES ", p.apps, versionedUpdate("name")); err != nil {
		return err
	}
	if _, err := upsert(ctx, tx, "INSERT INTO "+m.t.Chats+" (token, number, name, version, created_at, updated_at) VALUES ", p.chats, versionedUpdate("name")); err != nil {
		return err
	}
	affected, err := upsert(ctx, tx, "INSERT INTO "+m.t.Messages+messageColumns, p.creates, messageUpdate())
	if err != nil {
		return err
	}
	if err := p.uncountDeleted(ctx, tx, m, affected); err != nil {
		return err
	}
	if _, err := upsert(ctx, tx, "INSERT INTO "+m.t.Messages+messageColumns, p.edits, messageUpdate()); err != nil {
		return err
	}
	if err := p.applyDeletes(ctx, tx, m); err != nil {
		return err
	}
	if _, err := upsert(ctx, tx, "INSERT INTO "+m.t.Applications+" (token, chats_count, last_chat_number) VALUES ", p.appCountRows(), countUpdateFor("chats_count", "last_chat_number")); err != nil {
		return err
	}
	added, taken := p.chatCountRows()
	if _, err := upsert(ctx, tx, "INSERT INTO "+m.t.Chats+" (token, number, messages_count, last_message_number) VALUES ", added, countUpdateFor("messages_count", "last_message_number")); err != nil {
		return err
	}
	// A count that goes down (more deletes than creates) is no insert: its
	// chat's row exists, holding the creates it takes off.
	for _, r := range taken {
		if _, err := tx.ExecContext(ctx, "UPDATE "+m.t.Chats+" SET messages_count = messages_count - ?, last_message_number = GREATEST(last_message_number, ?) WHERE token = ? AND number = ?",
			r[2], r[3], r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}

func countUpdateFor(countCol, lastCol string) string {
	return strings.NewReplacer("%[1]s", countCol, "%[2]s", lastCol).Replace(countUpdate)
}

// maxStatementBytes keeps one statement well under max_allowed_packet
// (16 MiB on MariaDB, 64 MiB on MySQL 8 by default).
const maxStatementBytes = 4 << 20

// rowsPerStatement is the most rows of one statement. A statement of that
// many rows is prepared once per table and transaction and run as often as
// the rows fill it: its values travel in the binary protocol, which the
// server does not parse as SQL text (a replay applies millions of rows).
const rowsPerStatement = 500

// upsert runs head + rows + tail as few multi-row statements as the size
// limits allow, and returns the rows they affected.
func upsert(ctx context.Context, tx *sql.Tx, head string, rows []row, tail string) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	var affected int64
	var prepared *sql.Stmt
	defer func() {
		if prepared != nil {
			prepared.Close()
		}
	}()
	for len(rows) > 0 {
		n := fits(rows)
		args := make([]any, 0, n*len(rows[0]))
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		var (
			res sql.Result
			err error
		)
		switch {
		case n < rowsPerStatement:
			res, err = tx.ExecContext(ctx, statement(head, len(rows[0]), n, tail), args...)
		case prepared == nil:
			if prepared, err = tx.PrepareContext(ctx, statement(head, len(rows[0]), n, tail)); err == nil {
				res, err = prepared.ExecContext(ctx, args...)
			}
		default:
			res, err = prepared.ExecContext(ctx, args...)
		}
		if err != nil {
			return 0, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		affected += k
		rows = rows[n:]
	}
	return affected, nil
}

// fits returns how many rows, from the first, make one statement: at most
// rowsPerStatement, and no more once their values reach maxStatementBytes.
func fits(rows []row) int {
	size, n := 0, 0
	for ; n < len(rows) && n < rowsPerStatement && (n == 0 || size < maxStatementBytes); n++ {
		for _, v := range rows[n] {
			if s, ok := v.(string); ok {
				size += len(s)
			}
			size += 8
		}
	}
	return n
}

// statement is head, n tuples of width placeholders, and tail.
func statement(head string, width, n int, tail string) string {
	return head + stmt.Tuples(width, n) + tail
}
