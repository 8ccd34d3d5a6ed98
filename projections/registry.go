package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/ratelimit"
)

// Registrar records stored creates and deletes in the command side's
// state; it is idempotent.
type Registrar interface {
	Register(ctx context.Context, r numbering.Registration) error
}

// Overrides records stored rate-limit overrides in the command side's
// state; it keeps the newest of an application's, so it is idempotent.
type Overrides interface {
	SetOverrides(ctx context.Context, overrides []ratelimit.Override) error
}

// Registry folds the event log into the command side's record of which
// applications and chats exist and which messages are deleted, so that
// every create the event store holds is accepted as a parent, and every
// stored delete refuses later edits, whatever became of the request that
// made it; and it records every stored ApplicationLimitsSet.
//
// A create's request registers it too, right after the broker's confirm;
// this is what makes the log, not the request, decide: a client that hung
// up, a confirm that came after the publish timeout, or a process killed
// between confirm and registration all leave a stored create that this
// registers within moments of its append.
type Registry struct {
	reg         Registrar
	overrides   Overrides
	db          *sql.DB
	checkpoints *checkpoint.Store
}

// NewRegistry returns the registry projection of a namespace, which keeps
// its checkpoints in db.
func NewRegistry(reg Registrar, overrides Overrides, db *sql.DB, namespace string) *Registry {
	return &Registry{reg: reg, overrides: overrides, db: db, checkpoints: checkpoint.New(namespace)}
}

// Name implements Projection.
func (*Registry) Name() string { return "registry" }

// Checkpoint implements Projection.
func (p *Registry) Checkpoint(ctx context.Context, partition int) (int64, error) {
	pos, err := p.checkpoints.Ensure(ctx, p.db, p.Name(), partition)
	if err != nil {
		return 0, fmt.Errorf("read the registry checkpoint: %w", err)
	}
	return pos, nil
}

// Apply implements Projection: the creates of all the batches in one
// Register call, then every partition's checkpoint in one statement. Redis
// goes first, so a crash in between registers the batches again, which
// changes nothing.
func (p *Registry) Apply(ctx context.Context, batches [][]Event) error {
	var (
		all  numbering.Registration
		over []ratelimit.Override
		to   = make(map[int]int64, len(batches))
	)
	for _, batch := range batches {
		if len(batch) == 0 {
			continue
		}
		r, err := registration(batch)
		if err != nil {
			return ofBatch(fmt.Errorf("partition %d: %w", batch[0].Partition, err))
		}
		all.Apps, all.Chats, all.Deleted = append(all.Apps, r.Apps...), append(all.Chats, r.Chats...), append(all.Deleted, r.Deleted...)
		over = append(over, overridesIn(batch)...)
		part := batch[0].Partition
		to[part] = max(to[part], batch[len(batch)-1].Position)
	}
	if err := p.reg.Register(ctx, all); err != nil {
		return fmt.Errorf("register creates: %w", ofSlots(err))
	}
	if err := p.overrides.SetOverrides(ctx, over); err != nil {
		return fmt.Errorf("record rate-limit overrides: %w", err)
	}
	if err := p.checkpoints.AdvanceAll(ctx, p.db, p.Name(), to); err != nil {
		return fmt.Errorf("store the registry checkpoints: %w", err)
	}
	return nil
}

// ofSlots marks as concerning some batches only a refusal because some
// Redis slots' state is being rebuilt: the batches whose creates lie in
// other slots can be registered meanwhile.
func ofSlots(err error) error {
	if errors.Is(err, commands.ErrRecovering) {
		return ofBatch(err)
	}
	return err
}

// registration returns what batch tells the command side: the
// applications and chats whose creates it holds and the messages it
// deletes. Every other known event type changes nothing the command side
// keeps: numbers and versions are taken before their events are published.
// An unknown type stops the fold rather than being skipped unseen.
func registration(batch []Event) (r numbering.Registration, err error) {
	for _, e := range batch {
		switch ev := e.Event.(type) {
		case events.ApplicationCreated:
			r.Apps = append(r.Apps, ev.Token)
		case events.ChatCreated:
			r.Chats = append(r.Chats, numbering.Chat{Token: ev.Token, Number: ev.Number})
		case events.MessageDeleted:
			r.Deleted = append(r.Deleted, numbering.Message{Token: ev.Token, Chat: ev.ChatNumber, Number: ev.Number})
		case events.ApplicationRenamed, events.ChatRenamed, events.MessageCreated, events.MessageEdited, events.ApplicationLimitsSet:
		default:
			return numbering.Registration{}, fmt.Errorf("event at position %d: type %T is not handled by the registry", e.Position, ev)
		}
	}
	return r, nil
}

// overridesIn returns the rate-limit overrides batch sets.
func overridesIn(batch []Event) []ratelimit.Override {
	var out []ratelimit.Override
	for _, e := range batch {
		if ev, ok := e.Event.(events.ApplicationLimitsSet); ok {
			out = append(out, ratelimit.OverrideOf(e.StreamVersion, ev))
		}
	}
	return out
}
