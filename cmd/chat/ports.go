package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/ratelimit"
)

// The command side's ports that an adapter shared with other callers does
// not implement itself are translated here, so that neither the adapter
// nor commands imports the other. (numbering.Store and idempotency.Store,
// the command side's own stores, implement theirs directly.)

// brokerPublisher is what commandPublisher uses of broker.Publisher.
type brokerPublisher interface {
	Publish(ctx context.Context, r events.Record) error
	Connected() bool
}

// commandPublisher hands the broker's publisher to the command side and says
// "certainly not sent" in the command side's words (commands.ErrNotSent).
type commandPublisher struct{ brokerPublisher }

// Publish publishes r; an error that wraps broker.ErrNotSent also wraps
// commands.ErrNotSent, and one that wraps broker.ErrRefused (the
// partition's queue is full) commands.ErrBacklogFull.
func (p commandPublisher) Publish(ctx context.Context, r events.Record) error {
	err := p.brokerPublisher.Publish(ctx, r)
	switch {
	case errors.Is(err, broker.ErrNotSent):
		return fmt.Errorf("%w: %w", commands.ErrNotSent, err)
	case errors.Is(err, broker.ErrRefused):
		return fmt.Errorf("%w: %w", commands.ErrBacklogFull, err)
	}
	return err
}

// commandOverrides hands the rate-limit store to the command side, which
// records one override, in its own type, as its event is confirmed. The two
// override types have the same fields, so that one changed without the
// other stops the build here.
type commandOverrides struct{ store *ratelimit.Store }

// SetOverride records o unless a newer override of its application is kept.
func (c commandOverrides) SetOverride(ctx context.Context, o commands.Override) error {
	return c.store.SetOverrides(ctx, []ratelimit.Override{ratelimit.Override(o)})
}
