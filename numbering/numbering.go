// Package numbering keeps the command side's state in Redis: the next chat
// and message numbers, the next stream version of each aggregate, and which
// applications, chats and messages exist (as confirmed by the broker).
//
// Keys share the application token as their hash tag, so that a script that
// touches several keys of one application runs on one Redis Cluster slot.
package numbering

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// ErrUnknown means the application, chat or message does not exist (or its
// create has not been confirmed yet).
var ErrUnknown = errors.New("unknown aggregate")

// Store hands out numbers and versions from Redis.
type Store struct {
	rdb *redis.Client
	ns  string
}

// New returns a store whose keys start with namespace.
func New(rdb *redis.Client, namespace string) *Store {
	return &Store{rdb: rdb, ns: namespace}
}

// Key layout. An application's hash holds "v" (its stream version, present
// once its create is confirmed) and "n" (the last chat number handed out); a
// chat's hash likewise holds its version and last message number. A message
// exists when its number is handed out and not marked failed in the chat's
// bitmap of failed creates; a hash holds each message's edit count. (Marking
// failures instead of confirmations keeps a message create at one Redis round
// trip: failures are rare.)
func (s *Store) appKey(token string) string { return s.ns + ":app:{" + token + "}" }
func (s *Store) chatKey(token string, chat int64) string {
	return s.ns + ":chat:{" + token + "}:" + strconv.FormatInt(chat, 10)
}
func (s *Store) failedKey(token string, chat int64) string {
	return s.ns + ":failed:{" + token + "}:" + strconv.FormatInt(chat, 10)
}
func (s *Store) editsKey(token string, chat int64) string {
	return s.ns + ":edits:{" + token + "}:" + strconv.FormatInt(chat, 10)
}

// nextIfExists increments field of a hash whose "v" field marks it as
// confirmed; -1 when it is not.
var nextIfExists = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'v') == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)`)

// nextEdit gives the next version of a message stream: 1 is its create, so
// the first edit is 2. -1 when the number was never handed out or its create
// failed.
var nextEdit = redis.NewScript(`
local last = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if tonumber(ARGV[1]) > last or redis.call('GETBIT', KEYS[2], ARGV[1]) == 1 then return -1 end
return 1 + redis.call('HINCRBY', KEYS[3], ARGV[1], 1)`)

func (s *Store) run(ctx context.Context, script *redis.Script, keys []string, args ...any) (int64, error) {
	n, err := script.Run(ctx, s.rdb, keys, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("redis: %w", err)
	}
	if n < 0 {
		return 0, ErrUnknown
	}
	return n, nil
}

// ReserveChatNumber hands out the next chat number of an application.
func (s *Store) ReserveChatNumber(ctx context.Context, token string) (int64, error) {
	return s.run(ctx, nextIfExists, []string{s.appKey(token)}, "n")
}

// ReserveMessageNumber hands out the next message number of a chat.
func (s *Store) ReserveMessageNumber(ctx context.Context, token string, chat int64) (int64, error) {
	return s.run(ctx, nextIfExists, []string{s.chatKey(token, chat)}, "n")
}

// NextApplicationVersion reserves the next stream version of an application.
func (s *Store) NextApplicationVersion(ctx context.Context, token string) (int64, error) {
	return s.run(ctx, nextIfExists, []string{s.appKey(token)}, "v")
}

// NextChatVersion reserves the next stream version of a chat.
func (s *Store) NextChatVersion(ctx context.Context, token string, chat int64) (int64, error) {
	return s.run(ctx, nextIfExists, []string{s.chatKey(token, chat)}, "v")
}

// NextMessageVersion reserves the next stream version of a message.
func (s *Store) NextMessageVersion(ctx context.Context, token string, chat, number int64) (int64, error) {
	return s.run(ctx, nextEdit, []string{s.chatKey(token, chat), s.failedKey(token, chat), s.editsKey(token, chat)}, number)
}

// ReserveApplication registers a new application's token before its create
// is published, so that a Redis outage refuses the request up front instead
// of after the event is out.
func (s *Store) ReserveApplication(ctx context.Context, token string) error {
	return wrap(s.rdb.HSetNX(ctx, s.appKey(token), "n", 0).Err())
}

// ApplicationConfirmed records that an application's create was confirmed.
func (s *Store) ApplicationConfirmed(ctx context.Context, token string) error {
	return wrap(s.rdb.HSetNX(ctx, s.appKey(token), "v", 1).Err())
}

// ChatConfirmed records that a chat's create was confirmed.
func (s *Store) ChatConfirmed(ctx context.Context, token string, chat int64) error {
	return wrap(s.rdb.HSetNX(ctx, s.chatKey(token, chat), "v", 1).Err())
}

// MessageFailed records that a message number's create was not confirmed,
// so the number is never edited.
func (s *Store) MessageFailed(ctx context.Context, token string, chat, number int64) error {
	return wrap(s.rdb.SetBit(ctx, s.failedKey(token, chat), number, 1).Err())
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return wrap(s.rdb.Ping(ctx).Err()) }

func wrap(err error) error {
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}
