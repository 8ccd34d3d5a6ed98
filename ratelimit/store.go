// Package ratelimit keeps each application's request budgets in Redis: a
// token bucket per application and kind of request (commands, reads), and
// the per-application overrides an operator sets. Every key of an
// application shares its token's hash tag, so that one script per request
// reads and updates one Redis Cluster slot, and every process that serves
// the API draws on the same budget.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
)

// Kind is a kind of request, each with a budget of its own.
type Kind int

const (
	Commands Kind = iota
	Reads
)

// String is the kind's name in metrics, headers and keys.
func (k Kind) String() string {
	if k == Commands {
		return "commands"
	}
	return "reads"
}

// field is the override's hash field that holds the kind's rate.
func (k Kind) field() string {
	if k == Commands {
		return "c"
	}
	return "r"
}

// Override is an application's rate-limit override as the latest
// ApplicationLimitsSet stored for it says, with that event's stream
// version. A nil field follows the configured default; 0 lifts the limit.
type Override struct {
	Token    string
	Version  int64
	Commands *int64
	Reads    *int64
	Burst    *int64
}

// OverrideOf is the override an event sets.
func OverrideOf(version int64, ev events.ApplicationLimitsSet) Override {
	return Override{Token: ev.Token, Version: version, Commands: ev.Commands, Reads: ev.Reads, Burst: ev.Burst}
}

// Store reads and writes budgets and overrides.
type Store struct {
	rdb   redis.UniversalClient
	names catalog.Catalog
}

// NewStore returns the store of a namespace.
func NewStore(rdb redis.UniversalClient, namespace string) *Store {
	return &Store{rdb: rdb, names: catalog.New(namespace)}
}

// take draws one request from a bucket. An application whose key is absent
// (unknown, or its numbering state lost and being rebuilt) is not counted:
// its request is answered 404 or 503 anyway, and no key is made for a token
// nobody created. The override's fields replace the defaults. Time is the
// Redis server's, so processes with skewed clocks share one budget. It
// returns {-1} when the application is unknown, {0} when no limit applies,
// else {1, allowed, rate, burst, remaining, wait µs, until full µs}.
var take = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local o = redis.call('HMGET', KEYS[2], ARGV[1], 'b')
if o[1] then rate = tonumber(o[1]) end
if o[2] then burst = tonumber(o[2]) end
if rate <= 0 then return {0} end
local cap = rate * burst
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call('HMGET', KEYS[3], 'l', 't')
local level = cap
if b[1] then
  level = math.min(cap, tonumber(b[1]) + math.max(0, now - tonumber(b[2])) * rate / 1000000)
end
local allowed = 0
if level >= 1 then
  level = level - 1
  allowed = 1
end
redis.call('HSET', KEYS[3], 'l', string.format('%.6f', level), 't', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[3], burst * 1000 + 1000)
local wait = 0
if allowed == 0 then wait = math.ceil((1 - level) * 1000000 / rate) end
return {1, allowed, rate, burst, math.floor(level), wait, math.ceil((cap - level) * 1000000 / rate)}`)

// Taken is what a bucket said of one request.
type Taken struct {
	// Limited is false when no limit applies (or the application is
	// unknown); nothing else is set then.
	Limited bool
	Allowed bool
	// Rate is requests per second; Burst, seconds of it the bucket holds.
	Rate, Burst int64
	// Remaining is the whole requests left in the bucket.
	Remaining int64
	// Wait is how long until a refused request would be allowed.
	Wait time.Duration
	// Full is how long until the bucket is full again.
	Full time.Duration
}

// Take draws one request of kind from the application's bucket, with rate
// and burst the defaults an override may replace.
func (s *Store) Take(ctx context.Context, kind Kind, token string, rate, burst int64) (Taken, error) {
	keys := []string{s.names.AppKey(token), s.names.LimitsKey(token), s.names.BudgetKey(token, kind.String())}
	v, err := take.Run(ctx, s.rdb, keys, kind.field(), rate, burst).Int64Slice()
	if err != nil {
		return Taken{}, fmt.Errorf("redis: %w", err)
	}
	if len(v) < 7 || v[0] != 1 {
		return Taken{}, nil
	}
	return Taken{
		Limited: true, Allowed: v[1] == 1, Rate: v[2], Burst: v[3], Remaining: v[4],
		Wait: time.Duration(v[5]) * time.Microsecond, Full: time.Duration(v[6]) * time.Microsecond,
	}, nil
}

// setOverride replaces an override with a newer one: a version at or below
// the one kept changes nothing, so that the request that set it, the
// registry projection and a rebuild may all write it, in any order.
var setOverride = redis.NewScript(`
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'c', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'r', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'b', ARGV[4]) end
return 1`)

// SetOverrides records overrides, each unless a newer one is kept, in one
// pipelined round trip.
func (s *Store) SetOverrides(ctx context.Context, overrides []Override) error {
	if len(overrides) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, o := range overrides {
		setOverride.Eval(ctx, pipe, []string{s.names.LimitsKey(o.Token)}, o.Version, arg(o.Commands), arg(o.Reads), arg(o.Burst))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

func arg(v *int64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(*v, 10)
}

// Override reads an application's override; false when it has none.
func (s *Store) Override(ctx context.Context, token string) (Override, bool, error) {
	h, err := s.rdb.HGetAll(ctx, s.names.LimitsKey(token)).Result()
	if err != nil {
		return Override{}, false, fmt.Errorf("redis: %w", err)
	}
	if len(h) == 0 {
		return Override{}, false, nil
	}
	o := Override{Token: token}
	o.Version, _ = strconv.ParseInt(h["v"], 10, 64)
	o.Commands, o.Reads, o.Burst = field(h, "c"), field(h, "r"), field(h, "b")
	return o, true, nil
}

func field(h map[string]string, name string) *int64 {
	s, ok := h[name]
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &n
}
