package events

import "context"

type correlationKey struct{}

// WithCorrelationID returns a context carrying the id that events created
// under it will carry (the HTTP request id, typically).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the id set by WithCorrelationID, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}
