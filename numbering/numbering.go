// Package numbering keeps the command side's state in Redis: the next chat
// and message numbers, the next stream version of each aggregate, and which
// applications, chats and messages exist (as confirmed by the broker).
//
// Keys share the application token as their hash tag, and each hash slot has
// its own epoch key, so that every script touches one Redis Cluster slot.
package numbering

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/commands"
)

// Store hands out numbers and versions from Redis.
type Store struct {
	rdb     redis.UniversalClient
	names   catalog.Catalog
	numbers *reserver
}

// The store is the command side's numbering: its refusals are the command
// side's (commands.ErrUnknown, ErrDeleted, ErrRecovering).
var _ commands.Numbering = (*Store)(nil)

// New returns a store whose keys start with namespace, on one Redis server
// or a Redis Cluster.
func New(rdb redis.UniversalClient, namespace string) *Store {
	s := &Store{rdb: rdb, names: catalog.New(namespace)}
	s.numbers = newReserver(s)
	return s
}

// Key layout. An application's hash holds "v" (its stream version, present
// once its create is confirmed) and "n" (the last chat number handed out); a
// chat's hash likewise holds its version and last message number. A message
// exists when its number is handed out and not marked failed in the chat's
// bitmap of failed creates, nor deleted in its bitmap of deletes; a hash
// holds each message's edit count, deletes included. (Marking failures
// instead of confirmations keeps a message create at one Redis round trip:
// failures are rare.)
func (s *Store) appKey(token string) string                { return s.names.AppKey(token) }
func (s *Store) chatKey(token string, chat int64) string   { return s.names.ChatKey(token, chat) }
func (s *Store) failedKey(token string, chat int64) string { return s.names.FailedKey(token, chat) }
func (s *Store) editsKey(token string, chat int64) string  { return s.names.EditsKey(token, chat) }
func (s *Store) deletedKey(token string, chat int64) string {
	return s.names.DeletedKey(token, chat)
}

// nextIfExists adds ARGV[2] to field ARGV[1] of a hash whose "v" field marks
// it as confirmed, and returns the sum; -1 when it is not confirmed.
var nextIfExists = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return -2 end
if redis.call('HEXISTS', KEYS[1], 'v') == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])`)

// nextEdit gives the next version of a message stream: 1 is its create, so
// the first edit (or the delete) is 2. -1 when the number was never handed
// out or its create failed, -3 when the message is deleted.
var nextEdit = redis.NewScript(`
if redis.call('EXISTS', KEYS[5]) == 0 then return -2 end
local last = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if tonumber(ARGV[1]) > last or redis.call('GETBIT', KEYS[2], ARGV[1]) == 1 then return -1 end
if redis.call('GETBIT', KEYS[4], ARGV[1]) == 1 then return -3 end
return 1 + redis.call('HINCRBY', KEYS[3], ARGV[1], 1)`)

// reserveApp registers a new token; the epoch guards it like every number.
var reserveApp = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return -2 end
return redis.call('HSETNX', KEYS[1], 'n', 0)`)

// run runs a script with the epoch key of its keys' slot appended to them.
func (s *Store) run(ctx context.Context, script *redis.Script, keys []string, args ...any) (int64, error) {
	return outcome(script.Run(ctx, s.rdb, append(keys, s.names.EpochKeyOf(keys[0])), args...).Int64())
}

// outcome reads a numbering script's answer: its negative answers are the
// command side's refusals.
func outcome(n int64, err error) (int64, error) {
	switch {
	case err != nil:
		return 0, fmt.Errorf("redis: %w", err)
	case n == -2:
		return 0, commands.ErrRecovering
	case n == -3:
		return 0, commands.ErrDeleted
	case n < 0:
		return 0, commands.ErrUnknown
	}
	return n, nil
}

// ReserveChatNumber hands out the next chat number of an application.
func (s *Store) ReserveChatNumber(ctx context.Context, token string) (int64, error) {
	return s.numbers.next(ctx, s.appKey(token))
}

// ReserveMessageNumber hands out the next message number of a chat.
func (s *Store) ReserveMessageNumber(ctx context.Context, token string, chat int64) (int64, error) {
	return s.numbers.next(ctx, s.chatKey(token, chat))
}

// NextApplicationVersion reserves the next stream version of an application.
func (s *Store) NextApplicationVersion(ctx context.Context, token string) (int64, error) {
	return s.run(ctx, nextIfExists, []string{s.appKey(token)}, "v", 1)
}

// NextChatVersion reserves the next stream version of a chat.
func (s *Store) NextChatVersion(ctx context.Context, token string, chat int64) (int64, error) {
	return s.run(ctx, nextIfExists, []string{s.chatKey(token, chat)}, "v", 1)
}

// NextMessageVersion reserves the next stream version of a message, for
// an edit or its delete.
func (s *Store) NextMessageVersion(ctx context.Context, token string, chat, number int64) (int64, error) {
	return s.run(ctx, nextEdit, []string{s.chatKey(token, chat), s.failedKey(token, chat), s.editsKey(token, chat), s.deletedKey(token, chat)}, number)
}

// ReserveApplication registers a new application's token before its create
// is published, so that a Redis outage refuses the request up front instead
// of after the event is out.
func (s *Store) ReserveApplication(ctx context.Context, token string) error {
	_, err := s.run(ctx, reserveApp, []string{s.appKey(token)})
	return err
}

// ApplicationConfirmed records that an application's create was confirmed.
func (s *Store) ApplicationConfirmed(ctx context.Context, token string) error {
	return wrap(s.rdb.HSetNX(ctx, s.appKey(token), "v", 1).Err())
}

// ChatConfirmed records that a chat's create was confirmed.
func (s *Store) ChatConfirmed(ctx context.Context, token string, chat int64) error {
	return wrap(s.rdb.HSetNX(ctx, s.chatKey(token, chat), "v", 1).Err())
}

// Chat names one chat of an application.
type Chat struct {
	Token  string
	Number int64
}

// registerCreate marks an aggregate whose create is stored as existing. It
// never lowers a version that renames have already taken.
var registerCreate = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return -2 end
return redis.call('HSETNX', KEYS[1], 'v', 1)`)

// Message names one message of a chat.
type Message struct {
	Token        string
	Chat, Number int64
}

// Registration is what stored events tell the command side: the
// applications and chats whose creates are stored, and the messages whose
// deletes are.
type Registration struct {
	Apps    []string
	Chats   []Chat
	Deleted []Message
}

// registerDelete marks a message whose delete is stored as deleted.
var registerDelete = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return -2 end
return redis.call('SETBIT', KEYS[1], ARGV[1], 1)`)

// Register records what stored events tell (r), in one pipelined round
// trip. It is idempotent. While the numbering state is being recovered (an
// epoch key is gone) it refuses with commands.ErrRecovering: the rebuild
// restores every stored create and delete itself.
func (s *Store) Register(ctx context.Context, r Registration) error {
	if len(r.Apps)+len(r.Chats)+len(r.Deleted) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, 0, len(r.Apps)+len(r.Chats)+len(r.Deleted))
	for _, token := range r.Apps {
		key := s.appKey(token)
		cmds = append(cmds, registerCreate.Eval(ctx, pipe, []string{key, s.names.EpochKeyOf(key)}))
	}
	for _, c := range r.Chats {
		key := s.chatKey(c.Token, c.Number)
		cmds = append(cmds, registerCreate.Eval(ctx, pipe, []string{key, s.names.EpochKeyOf(key)}))
	}
	for _, m := range r.Deleted {
		key := s.deletedKey(m.Token, m.Chat)
		cmds = append(cmds, registerDelete.Eval(ctx, pipe, []string{key, s.names.EpochKeyOf(key)}, m.Number))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return wrap(err)
	}
	for _, c := range cmds {
		if n, _ := c.Int64(); n == -2 {
			return commands.ErrRecovering
		}
	}
	return nil
}

// MessageFailed records that a message number's create was not confirmed,
// so the number is never edited.
func (s *Store) MessageFailed(ctx context.Context, token string, chat, number int64) error {
	return wrap(s.rdb.SetBit(ctx, s.failedKey(token, chat), number, 1).Err())
}

// MessageDeleted records that a message's delete was confirmed, so that
// it is neither edited nor deleted again.
func (s *Store) MessageDeleted(ctx context.Context, token string, chat, number int64) error {
	return wrap(s.rdb.SetBit(ctx, s.deletedKey(token, chat), number, 1).Err())
}

// Ready reports whether numbers can be handed out: Redis answers and every
// slot's numbering state is sealed (commands.ErrRecovering while some is
// rebuilt).
func (s *Store) Ready(ctx context.Context) error {
	masters, err := s.Masters(ctx)
	if err != nil {
		return err
	}
	for _, m := range masters {
		if len(m.Missing()) > 0 {
			return commands.ErrRecovering
		}
	}
	return nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return wrap(s.rdb.Ping(ctx).Err()) }

func wrap(err error) error {
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Restore writes a numbering state rebuilt from the event store, in
// pipelined chunks, and seals it with a new epoch.
type Restore struct {
	s       *Store
	pipe    redis.Pipeliner
	pending int
}

// NewRestore starts a restore.
func (s *Store) NewRestore() *Restore { return &Restore{s: s, pipe: s.rdb.Pipeline()} }

func (r *Restore) queued(ctx context.Context) error {
	r.pending++
	if r.pending < 1000 {
		return nil
	}
	r.pending = 0
	_, err := r.pipe.Exec(ctx)
	return wrap(err)
}

// Application restores an application: its stream version and last chat number.
func (r *Restore) Application(ctx context.Context, token string, version, lastChat int64) error {
	r.pipe.HSet(ctx, r.s.appKey(token), "v", version, "n", lastChat)
	return r.queued(ctx)
}

// Chat restores a chat: its stream version and last message number.
func (r *Restore) Chat(ctx context.Context, token string, chat, version, lastMessage int64) error {
	r.pipe.HSet(ctx, r.s.chatKey(token, chat), "v", version, "n", lastMessage)
	return r.queued(ctx)
}

// Failed restores a message number that was handed out but never stored.
func (r *Restore) Failed(ctx context.Context, token string, chat, number int64) error {
	r.pipe.SetBit(ctx, r.s.failedKey(token, chat), number, 1)
	return r.queued(ctx)
}

// Deleted restores a deleted message.
func (r *Restore) Deleted(ctx context.Context, token string, chat, number int64) error {
	r.pipe.SetBit(ctx, r.s.deletedKey(token, chat), number, 1)
	return r.queued(ctx)
}

// Edits restores a message's edit count (its stream version less one).
func (r *Restore) Edits(ctx context.Context, token string, chat, number, edits int64) error {
	r.pipe.HSet(ctx, r.s.editsKey(token, chat), strconv.FormatInt(number, 10), edits)
	return r.queued(ctx)
}

// Commit writes what is queued. Numbers are handed out again once the
// restored slots are sealed.
func (r *Restore) Commit(ctx context.Context) error {
	_, err := r.pipe.Exec(ctx)
	return wrap(err)
}
