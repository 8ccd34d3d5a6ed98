package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatsys/chat/api"
	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/ratelimit"
)

// The ports that an adapter shared with other callers does not implement
// itself are translated here, so that neither the adapter nor the port's
// owner (commands, api) imports the other. (numbering.Store and
// idempotency.Store, the command side's own stores, implement theirs
// directly.)

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

// rateLimiter is what apiLimiter uses of ratelimit.Limiter.
type rateLimiter interface {
	Allow(ctx context.Context, kind ratelimit.Kind, token string) (ratelimit.Decision, error)
}

// apiLimiter hands the rate limiter to the API in the API's own types.
type apiLimiter struct{ rateLimiter }

// Allow draws a request of kind from the budget of token's application.
// The two policy types have the same fields, so that one changed without
// the other stops the build here.
func (l apiLimiter) Allow(ctx context.Context, kind api.RequestKind, token string) (api.RateDecision, error) {
	k := ratelimit.Reads
	if kind == api.CommandRequest {
		k = ratelimit.Commands
	}
	d, err := l.rateLimiter.Allow(ctx, k, token)
	return api.RateDecision{
		Limited: d.Limited, Allowed: d.Allowed, Policy: api.RatePolicy(d.Policy),
		Remaining: d.Remaining, Reset: d.Reset, RetryAfter: d.RetryAfter,
	}, err
}
