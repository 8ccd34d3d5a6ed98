package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
)

// brokerPublisher is what commandPublisher uses of broker.Publisher.
type brokerPublisher interface {
	Publish(ctx context.Context, r events.Record) error
	Connected() bool
}

// commandPublisher hands the broker's publisher to the command side and says
// "certainly not sent" in the command side's words (commands.ErrNotSent).
// The mapping lives here, in the wiring, so that neither broker nor commands
// has to import the other.
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
