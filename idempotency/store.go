// Package idempotency keeps the record of each Idempotency-Key in Redis, so
// that a client retrying a command it never got an answer to gets the first
// attempt's answer instead of a second change.
//
// A record is small and fixed in size: the request's fingerprint, whether
// the attempt is pending or done, the lease of the attempt in charge, and
// once its event is built the event's id, token or number, stream version
// and time. The answer is rebuilt from it plus the retried request, whose
// fingerprint matched. Records expire after the retention (24 hours); each
// scope (an application, or the namespace for new applications) holds at
// most a fixed number at once. The keys of one scope share a hash tag, so
// every script touches one Redis Cluster slot.
package idempotency

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/internal/pause"
)

// Options bound the store.
type Options struct {
	// Retention is how long a key is remembered after its first use.
	Retention time.Duration
	// Lease is how long an attempt owns its key before a retry may take it
	// over; it must outlast the longest attempt.
	Lease time.Duration
	// MaxKeys is the most live keys one scope holds.
	MaxKeys int
	// Wait is how long a retry waits for an attempt in flight to finish
	// before it is refused with commands.ErrKeyInFlight.
	Wait time.Duration
}

// Store keeps idempotency records in Redis.
type Store struct {
	rdb    redis.UniversalClient
	names  catalog.Catalog
	opt    Options
	claims *prometheus.CounterVec
}

// New returns a store whose keys start with namespace; reg (optional) gets
// its metrics.
func New(rdb redis.UniversalClient, namespace string, opt Options, reg prometheus.Registerer) *Store {
	s := &Store{rdb: rdb, names: catalog.New(namespace), opt: opt, claims: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chat_idempotency_claims_total",
		Help: "Commands sent with an Idempotency-Key, by what their key's record said: fresh, replayed, resumed, reused, in_flight, limit.",
	}, []string{"result"})}
	if reg != nil {
		reg.MustRegister(s.claims)
	}
	return s
}

// Lease is how long an attempt owns its key.
func (s *Store) Lease() time.Duration { return s.opt.Lease }

// The store implements the command side's port for Idempotency-Keys: its
// claims, outcomes and refusals are the command side's.
var _ commands.KeyRecords = (*Store)(nil)

// keys returns the record's key and the scope's index. A scope is an
// application's token, or "" for the namespace (new applications).
func (s *Store) keys(scope, key string) (record, index, member string) {
	index = s.names.IdempotencyIndex(scope)
	member = keyID(key)
	return index + ":" + member, index, member
}

// keyID names a key in Redis: a hash keeps the Redis key short whatever the
// client's key, and free of characters (such as braces) that Redis Cluster
// would read as a hash tag.
func keyID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// Claim results, as the claim script returns them.
const (
	claimNew = iota
	claimDone
	claimResume
	claimBusy
	claimReused
	claimFull
)

// claimScript reads a key's record. Absent: it creates a pending one owned by
// the caller, unless the scope is full. Another fingerprint: reused. Done:
// the outcome. Pending under a live lease: busy, with the lease's remaining
// milliseconds. Pending under an expired lease: the caller takes it over and
// gets what the last owner saved. Time is the Redis server's, the one clock
// every API process shares.
//
// KEYS: record, scope index. ARGV: fingerprint, owner, lease ms, retention
// ms, most keys, index member.
var claimScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('HMGET', KEYS[1], 'f', 's', 'l', 'e', 't', 'n', 'v', 'a')
if not r[1] then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {5, tonumber(oldest[2]) - now}
  end
  redis.call('HSET', KEYS[1], 'f', ARGV[1], 's', 'p', 'o', ARGV[2], 'l', now + tonumber(ARGV[3]))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return {0}
end
if r[1] ~= ARGV[1] then return {4} end
if r[2] == 'd' then return {1, r[4], r[5], r[6], r[7], r[8]} end
local left = tonumber(r[3]) - now
if left > 0 then return {3, left} end
redis.call('HSET', KEYS[1], 'o', ARGV[2], 'l', now + tonumber(ARGV[3]))
return {2, r[4], r[5], r[6], r[7], r[8]}`)

// Claim takes hold of key in scope for a request with fingerprint. It
// refuses with commands.ErrKeyReused, ErrKeyLimit or, after waiting up to
// Options.Wait for an attempt in flight, ErrKeyInFlight; the last two in a
// *commands.RetryError.
func (s *Store) Claim(ctx context.Context, scope, key, fingerprint string) (*commands.Claim, error) {
	record, index, member := s.keys(scope, key)
	c := &commands.Claim{Scope: scope, Key: key, Owner: newOwner()}
	deadline := time.Now().Add(s.opt.Wait)
	wait := 20 * time.Millisecond
	for {
		res, err := claimScript.Run(ctx, s.rdb, []string{record, index},
			fingerprint, c.Owner, s.opt.Lease.Milliseconds(), s.opt.Retention.Milliseconds(), s.opt.MaxKeys, member).Slice()
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		switch code(res, 0) {
		case claimNew:
			c.State = commands.ClaimFresh
			s.claims.WithLabelValues("fresh").Inc()
			return c, nil
		case claimDone, claimResume:
			o, err := outcome(res[1:])
			if err != nil {
				return nil, err
			}
			c.Outcome = o
			switch {
			case code(res, 0) == claimDone:
				c.State = commands.ClaimReplay
			case o.EventID != uuid.Nil:
				c.State = commands.ClaimResume
			default:
				c.State = commands.ClaimFresh // its last owner stopped before building an event
			}
			s.claims.WithLabelValues(c.State.String()).Inc()
			return c, nil
		case claimReused:
			s.claims.WithLabelValues("reused").Inc()
			return nil, commands.ErrKeyReused
		case claimFull:
			s.claims.WithLabelValues("limit").Inc()
			return nil, &commands.RetryError{Err: commands.ErrKeyLimit, After: time.Duration(code(res, 1)) * time.Millisecond}
		case claimBusy:
			if time.Now().Add(wait).After(deadline) || pause.For(ctx, wait) != nil {
				s.claims.WithLabelValues("in_flight").Inc()
				return nil, &commands.RetryError{Err: commands.ErrKeyInFlight, After: time.Duration(code(res, 1)) * time.Millisecond}
			}
			wait = min(2*wait, 200*time.Millisecond)
		default:
			return nil, fmt.Errorf("idempotency: unexpected claim result %v", res)
		}
	}
}

// saveScript stores the outcome of a pending record while the caller still
// owns it. KEYS: record. ARGV: owner, event id, token, number, version, time.
var saveScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[2], 't', ARGV[3], 'n', ARGV[4], 'v', ARGV[5], 'a', ARGV[6])
return 1`)

// Save records the event an attempt is about to publish. It must succeed
// before the publish: a retry then publishes the very same event.
// commands.ErrKeyLost means another attempt owns the key now, and this one
// must not publish.
// means another attempt owns the key now, and this one must not publish.
func (s *Store) Save(ctx context.Context, c *commands.Claim, o commands.Outcome) error {
	record, _, _ := s.keys(c.Scope, c.Key)
	n, err := saveScript.Run(ctx, s.rdb, []string{record}, c.Owner,
		o.EventID.String(), o.Token, o.Number, o.Version, o.At.UnixMicro()).Int()
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if n == 0 {
		return commands.ErrKeyLost
	}
	c.Outcome = o
	return nil
}

// doneScript marks a record done, whoever owns it: the confirm of its event
// is a fact. KEYS: record. ARGV: event id.
var doneScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'e') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', 'd')
redis.call('HDEL', KEYS[1], 'o', 'l')
return 1`)

// Done records that the claim's event was confirmed.
func (s *Store) Done(ctx context.Context, c *commands.Claim) error {
	record, _, _ := s.keys(c.Scope, c.Key)
	return wrap(doneScript.Run(ctx, s.rdb, []string{record}, c.Outcome.EventID.String()).Err())
}

// releaseScript deletes a record its caller owns. KEYS: record, index. ARGV:
// owner, index member.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1`)

// Release forgets the key: the attempt certainly published nothing, so a
// retry runs afresh.
func (s *Store) Release(ctx context.Context, c *commands.Claim) error {
	record, index, member := s.keys(c.Scope, c.Key)
	return wrap(releaseScript.Run(ctx, s.rdb, []string{record, index}, c.Owner, member).Err())
}

// abandonScript ends the caller's lease at once. KEYS: record. ARGV: owner.
var abandonScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'l', 0)
return 1`)

// Abandon gives the key up without an outcome: the event may or may not be
// stored, so the record stays, and the next retry takes it over at once and
// publishes the same event again.
func (s *Store) Abandon(ctx context.Context, c *commands.Claim) error {
	record, _, _ := s.keys(c.Scope, c.Key)
	return wrap(abandonScript.Run(ctx, s.rdb, []string{record}, c.Owner).Err())
}

// outcome decodes the event id, token, number, version and time a script
// returned (nil where nothing was saved).
func outcome(v []any) (commands.Outcome, error) {
	if len(v) < 5 || v[0] == nil {
		return commands.Outcome{}, nil
	}
	str := func(x any) string { s, _ := x.(string); return s }
	num := func(x any) int64 { n, _ := strconv.ParseInt(str(x), 10, 64); return n }
	id, err := uuid.Parse(str(v[0]))
	if err != nil {
		return commands.Outcome{}, fmt.Errorf("idempotency: stored event id: %w", err)
	}
	return commands.Outcome{EventID: id, Token: str(v[1]), Number: num(v[2]), Version: num(v[3]), At: time.UnixMicro(num(v[4])).UTC()}, nil
}

// code reads the i-th element of a script's answer as an integer.
func code(v []any, i int) int64 {
	if i >= len(v) {
		return -1
	}
	n, ok := v[i].(int64)
	if !ok {
		return -1
	}
	return n
}

// newOwner names an attempt, so that its record tells it from a later
// attempt that took the key over.
func newOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func wrap(err error) error {
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}
