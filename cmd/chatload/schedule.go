package main

import (
	"context"
	"time"

	"github.com/chatsys/chat/internal/pause"
)

// schedule is an open-loop arrival schedule: request i is due at
// start + i/rate, however the requests before it fared.
type schedule struct {
	start time.Time
	rate  float64 // requests per second, > 0
}

func (s schedule) at(i int64) time.Time {
	return s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.rate))
}

// clock is the scheduler's time source.
type clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time                                   { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error { return pause.For(ctx, d) }

// run calls emit, in order, for every request due before end, as soon as it
// is due. When the scheduler wakes late it emits at once every request that
// fell due meanwhile, each with its own due time, so a late wake-up does not
// lower the rate. run returns the number of requests emitted; it stops early
// when ctx is done.
func (s schedule) run(ctx context.Context, end time.Time, clk clock, emit func(seq int64, due time.Time)) int64 {
	var next int64
	for {
		due := s.at(next)
		if !due.Before(end) {
			return next
		}
		if err := clk.Sleep(ctx, due.Sub(clk.Now())); err != nil {
			return next
		}
		now := clk.Now()
		for !due.After(now) && due.Before(end) {
			emit(next, due)
			next++
			due = s.at(next)
		}
	}
}
