package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chatsys/chat/api"
	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/ratelimit"
)

// stubBroker answers every publish with err.
type stubBroker struct{ err error }

func (s stubBroker) Publish(context.Context, events.Record) error { return s.err }
func (s stubBroker) Connected() bool                              { return s.err == nil }

// TestCommandPublisherSaysNotSent: only a publish the broker's publisher
// certainly did not send reaches the command side as commands.ErrNotSent,
// which lets it mark the number failed; one whose confirm did not come
// must not, as its event may yet be stored.
func TestCommandPublisherSaysNotSent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		notSent bool
	}{
		{"confirmed", nil, false},
		{"no connection", fmt.Errorf("%w: %w", broker.ErrNotConfirmed, broker.ErrNotSent), true},
		{"no confirm in time", fmt.Errorf("%w: no confirm within 5s", broker.ErrNotConfirmed), false},
		{"the channel closed", fmt.Errorf("%w: %w", broker.ErrNotConfirmed, errors.New("channel closed")), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := commandPublisher{stubBroker{tc.err}}.Publish(context.Background(), events.Record{})
			if !errors.Is(err, tc.err) {
				t.Errorf("Publish: %v, want it to keep the broker's %v", err, tc.err)
			}
			if got := errors.Is(err, commands.ErrNotSent); got != tc.notSent {
				t.Errorf("Publish: %v; wraps commands.ErrNotSent: %v, want %v", err, got, tc.notSent)
			}
		})
	}
}

// stubLimiter answers every request with one decision and err, and keeps
// the kind it was asked for.
type stubLimiter struct {
	d     ratelimit.Decision
	err   error
	asked ratelimit.Kind
}

func (s *stubLimiter) Allow(_ context.Context, kind ratelimit.Kind, _ string) (ratelimit.Decision, error) {
	s.asked = kind
	return s.d, s.err
}

// TestAPILimiterTranslates: the API's kinds reach the limiter as the
// budgets of the same name, and its decision and error reach the API
// whole.
func TestAPILimiterTranslates(t *testing.T) {
	t.Parallel()
	d := ratelimit.Decision{
		Limited: true, Allowed: true, Policy: ratelimit.Policy{Name: "reads", Quota: 20, Window: 2},
		Remaining: 7, Reset: 1500 * time.Millisecond, RetryAfter: 100 * time.Millisecond,
	}
	want := api.RateDecision{
		Limited: true, Allowed: true, Policy: api.RatePolicy{Name: "reads", Quota: 20, Window: 2},
		Remaining: 7, Reset: 1500 * time.Millisecond, RetryAfter: 100 * time.Millisecond,
	}
	down := errors.New("down")
	tests := []struct {
		kind api.RequestKind
		want ratelimit.Kind
		err  error
	}{
		{api.CommandRequest, ratelimit.Commands, nil},
		{api.ReadRequest, ratelimit.Reads, nil},
		{api.CommandRequest, ratelimit.Commands, down},
	}
	for _, tc := range tests {
		stub := &stubLimiter{d: d, err: tc.err}
		got, err := apiLimiter{stub}.Allow(context.Background(), tc.kind, "token")
		if stub.asked != tc.want || got != want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("Allow(%v): asked %v, got %+v, %v; want %v, %+v, %v", tc.kind, stub.asked, got, err, tc.want, want, tc.err)
		}
	}
}
