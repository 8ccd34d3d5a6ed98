// Package pause holds the one wait that every retry loop needs: a sleep that
// ends early when its context does.
package pause

import (
	"context"
	"time"
)

// For waits for d or until ctx is done, and returns ctx's error if it is.
func For(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
