package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
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
