package mysqldb

import (
	"context"
	"errors"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/internal/pause"
)

// lockRetries is how many times Retried runs an operation in all.
const lockRetries = 5

// Retried runs op, and runs it again when the server undid it for a lock:
// chose it as a deadlock's victim (1213) or gave up waiting for a lock
// (1205). Either undoes the whole statement, so op must be one statement
// run outside a transaction, or a whole transaction: a statement inside a
// transaction that the server rolled back must not be run again alone.
func Retried(ctx context.Context, op func(context.Context) error) error {
	delay := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil || attempt == lockRetries || !LockLost(err) {
			return err
		}
		if err := pause.For(ctx, delay); err != nil {
			return err
		}
		delay *= 2
	}
}

// LockLost reports whether the server undid a statement for a lock: a
// deadlock or a lock wait timeout.
func LockLost(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}
