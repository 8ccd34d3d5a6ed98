package pause

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		d       time.Duration
		wantErr error
		atLeast time.Duration
	}{
		{"waits", context.Background(), 20 * time.Millisecond, nil, 20 * time.Millisecond},
		{"nothing to wait", context.Background(), 0, nil, 0},
		{"context already done", cancelled, time.Hour, context.Canceled, 0},
	}
	for _, tc := range tests {
		start := time.Now()
		err := For(tc.ctx, tc.d)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
		if took := time.Since(start); took < tc.atLeast || took > tc.atLeast+time.Second {
			t.Errorf("%s: took %s", tc.name, took)
		}
	}
}
