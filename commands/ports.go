package commands

import (
	"context"
	"errors"
	"time"

	"github.com/chatsys/chat/events"
)

// The ports: what the command handlers need of Redis and the broker, in
// the command side's own types and errors. The adapters implement them
// (numbering.Store and idempotency.Store import this package) or are
// translated in the wiring (cmd/chat: the broker's publisher, the
// rate-limit store), so that nothing here names an adapter.

// Numbering hands out the numbers and versions that events need, and knows
// which applications, chats and messages exist. An unknown application, chat
// or message is reported with ErrUnknown, a deleted message with ErrDeleted,
// a numbering state being rebuilt with ErrRecovering; any other error means
// it is unavailable.
type Numbering interface {
	ReserveApplication(ctx context.Context, token string) error
	ApplicationConfirmed(ctx context.Context, token string) error
	NextApplicationVersion(ctx context.Context, token string) (int64, error)
	ReserveChatNumber(ctx context.Context, token string) (int64, error)
	ChatConfirmed(ctx context.Context, token string, chat int64) error
	NextChatVersion(ctx context.Context, token string, chat int64) (int64, error)
	ReserveMessageNumber(ctx context.Context, token string, chat int64) (int64, error)
	MessageFailed(ctx context.Context, token string, chat, number int64) error
	NextMessageVersion(ctx context.Context, token string, chat, number int64) (int64, error)
	MessageDeleted(ctx context.Context, token string, chat, number int64) error
}

var (
	// ErrUnknown means the application, chat or message does not exist (or
	// its create has not been confirmed yet).
	ErrUnknown = errors.New("unknown aggregate")
	// ErrDeleted means the message was deleted (as confirmed by the broker).
	ErrDeleted = errors.New("deleted message")
	// ErrRecovering means the numbering state was lost and is being rebuilt
	// from the event store; no number may be handed out until then, or one
	// that was already given out could be again.
	ErrRecovering = errors.New("numbering state is being recovered")
)

// KeyRecords keeps the record of each Idempotency-Key. Claim answers a
// claim that is ClaimFresh, ClaimReplay or ClaimResume, or refuses with
// ErrKeyReused, ErrKeyInFlight or ErrKeyLimit (the last two in a
// *RetryError); Save records the event before it is published (ErrKeyLost
// when another attempt took the key over); Done, Release and Abandon
// settle the record.
type KeyRecords interface {
	Claim(ctx context.Context, scope, key, fingerprint string) (*Claim, error)
	Save(ctx context.Context, c *Claim, o Outcome) error
	Done(ctx context.Context, c *Claim) error
	Release(ctx context.Context, c *Claim) error
	Abandon(ctx context.Context, c *Claim) error
	// Lease is how long an attempt owns its key.
	Lease() time.Duration
}

var (
	// ErrKeyReused means the key was used for another request (another kind
	// of command, target, name or body).
	ErrKeyReused = errors.New("idempotency key already used for another request")
	// ErrKeyInFlight means an attempt with the key is still running.
	ErrKeyInFlight = errors.New("an attempt with this idempotency key is still in flight")
	// ErrKeyLimit means the scope holds as many live keys as it may.
	ErrKeyLimit = errors.New("too many idempotency keys in use")
	// ErrKeyLost means another attempt took the key over: this one must not
	// publish anything.
	ErrKeyLost = errors.New("the idempotency key was taken over by another attempt")
)

// RetryError is a refusal that says how long to wait before retrying.
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// retryAfter is the wait err carries; 0 when it carries none.
func retryAfter(err error) time.Duration {
	if r, ok := errors.AsType[*RetryError](err); ok {
		return r.After
	}
	return 0
}

// Publisher sends one event record and returns once the broker confirmed it.
// An error that wraps ErrNotSent says the record was certainly not sent; any
// other error leaves it unknown whether the broker has it. A record is never
// sent after ctx's deadline: the Redis-loss recovery counts on that to know
// when nothing reserved before the loss can reach the broker any more.
type Publisher interface {
	Publish(ctx context.Context, r events.Record) error
	// Connected reports whether a publish could be sent now.
	Connected() bool
}

// ErrNotSent is what a Publisher's error wraps when the record certainly
// never reached the broker (there was no connection to send it on). Only
// then may its number be marked failed and its Idempotency-Key forgotten:
// after any other failure the event may yet be stored.
var ErrNotSent = errors.New("the event was not sent")

// ErrBacklogFull is what a Publisher's error wraps when the broker refused
// the record because the queue it goes to is full: the event log is behind.
var ErrBacklogFull = errors.New("the event log's backlog is full")

// Overrides records an application's rate-limit override once its event is
// confirmed, so that the override holds from the moment the operator is
// told. The registry projection records every stored one too.
type Overrides interface {
	SetOverride(ctx context.Context, o Override) error
}
