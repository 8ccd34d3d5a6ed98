package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/pause"
)

// DeadEraser takes deleted messages' words out of the dead-letter queue.
// The event store erases them from the log in the transaction that stores
// a delete, and the writer parks a record of a deleted message without
// them; what was parked before (a conflicting edit, a whole message that
// could not be taken) is rewritten here, once the delete is stored, and
// once more a while later for what raced it.
type DeadEraser struct {
	AMQPURL string
	Names   broker.Names
	Store   *eventstore.Store
	Log     *slog.Logger
	// Interval is how often it looks for new deletes (default 5 s); Again
	// is how long after a sweep it sweeps once more (default a minute).
	Interval, Again time.Duration
}

// Run sweeps the dead queue after new deletes until ctx ends.
func (e *DeadEraser) Run(ctx context.Context) error {
	interval, again := e.Interval, e.Again
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if again <= 0 {
		again = time.Minute
	}
	var seen, next time.Time
	for {
		latest, err := e.Store.LastErasure(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				e.Log.Warn("dead-letter eraser: read the latest delete", "err", err)
			}
		case latest.After(seen) || !next.IsZero() && time.Now().After(next):
			if err := e.Sweep(ctx); err != nil {
				if ctx.Err() == nil {
					e.Log.Warn("dead-letter eraser: sweep", "err", err)
				}
				break
			}
			if latest.After(seen) {
				seen, next = latest, time.Now().Add(again)
			} else {
				next = time.Time{}
			}
		}
		if err := pause.For(ctx, interval); err != nil {
			return nil
		}
	}
}

// Sweep rewrites once every dead letter that carries a deleted message's
// words.
func (e *DeadEraser) Sweep(ctx context.Context) error {
	n, err := broker.RewriteDead(ctx, e.AMQPURL, e.Names, func(body []byte) ([]byte, bool, error) {
		return broker.EraseLines(body, func(streams []string) (map[string]bool, error) {
			return e.Store.Deleted(ctx, streams)
		})
	})
	if n > 0 {
		e.Log.Info("erased deleted messages from dead letters", "messages", n)
	}
	return err
}
