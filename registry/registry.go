// Package registry folds the event log into the command side's record of
// which applications and chats exist, so that every create the event store
// holds is accepted as a parent, whatever became of the request that made it.
package registry

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/projections"
)

// Registrar records stored creates; it is idempotent.
type Registrar interface {
	Register(ctx context.Context, apps []string, chats []numbering.Chat) error
}

// Projection registers every stored ApplicationCreated and ChatCreated. A
// create's request registers it too, right after the broker's confirm; this
// is what makes the log, not the request, decide: a client that hung up, a
// confirm that came after the publish timeout, or a process killed between
// confirm and registration all leave a stored create that this registers
// within moments of its append.
type Projection struct {
	reg         Registrar
	checkpoints *checkpoint.Store
}

// New returns the registry projection of a namespace.
func New(reg Registrar, namespace string) *Projection {
	return &Projection{reg: reg, checkpoints: checkpoint.New(namespace)}
}

// Name implements projections.Projection.
func (*Projection) Name() string { return "registry" }

// Checkpoint implements projections.Projection.
func (p *Projection) Checkpoint(ctx context.Context, db *sql.DB, partition int) (int64, error) {
	pos, err := p.checkpoints.Ensure(ctx, db, p.Name(), partition)
	if err != nil {
		return 0, fmt.Errorf("read the registry checkpoint: %w", err)
	}
	return pos, nil
}

// Apply implements projections.Projection: Redis first, then the checkpoint,
// so a crash in between registers the batch again, which changes nothing.
func (p *Projection) Apply(ctx context.Context, db *sql.DB, batch []projections.Event) error {
	apps, chats, err := Creates(batch)
	if err != nil {
		return err
	}
	if err := p.reg.Register(ctx, apps, chats); err != nil {
		return fmt.Errorf("register creates: %w", err)
	}
	if err := p.checkpoints.Advance(ctx, db, p.Name(), batch[0].Partition, batch[len(batch)-1].Position); err != nil {
		return fmt.Errorf("store the registry checkpoint: %w", err)
	}
	return nil
}

// Creates returns the applications and chats whose creates are in batch.
// Every other known event type changes nothing the command side keeps:
// numbers and versions are taken before their events are published. An
// unknown type stops the fold rather than being skipped unseen.
func Creates(batch []projections.Event) (apps []string, chats []numbering.Chat, err error) {
	for _, e := range batch {
		switch ev := e.Event.(type) {
		case events.ApplicationCreated:
			apps = append(apps, ev.Token)
		case events.ChatCreated:
			chats = append(chats, numbering.Chat{Token: ev.Token, Number: ev.Number})
		case events.ApplicationRenamed, events.ChatRenamed, events.MessageCreated, events.MessageEdited:
		default:
			return nil, nil, fmt.Errorf("event at position %d: type %T is not handled by the registry", e.Position, ev)
		}
	}
	return apps, chats, nil
}
