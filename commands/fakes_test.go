package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
)

// In-memory stand-ins for Redis and the broker, with the semantics their
// real adapters document; the integration tests run the real ones.

// fakeNumbering hands out numbers and versions as numbering.Store does: a
// chat number only under a confirmed application, a message number only in
// a confirmed chat, an edit only of a number handed out and not failed.
type fakeNumbering struct {
	mu sync.Mutex
	// down, when set, fails every call (Redis unreachable, or
	// commands.ErrRecovering).
	down error
	// registerErr, when set, fails the registration of a confirmed create.
	registerErr error
	apps        map[string]*fakeStream
	chats       map[fakeChat]*fakeStream
	failed      map[fakeMessage]bool
	deleted     map[fakeMessage]bool
	edits       map[fakeMessage]int64
}

// fakeStream is an application's or a chat's state: its version (0 until
// its create is confirmed) and the last number handed out under it.
type fakeStream struct{ version, last int64 }

type fakeChat struct {
	token string
	chat  int64
}

type fakeMessage struct {
	fakeChat
	number int64
}

func newFakeNumbering() *fakeNumbering {
	return &fakeNumbering{apps: map[string]*fakeStream{}, chats: map[fakeChat]*fakeStream{}, failed: map[fakeMessage]bool{}, deleted: map[fakeMessage]bool{}, edits: map[fakeMessage]int64{}}
}

// addApp makes an application with chats chats, each holding messages
// messages, as if their creates were confirmed.
func (f *fakeNumbering) addApp(token string, chats, messages int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps[token] = &fakeStream{version: 1, last: chats}
	for n := int64(1); n <= chats; n++ {
		f.chats[fakeChat{token, n}] = &fakeStream{version: 1, last: messages}
	}
}

func (f *fakeNumbering) check() error {
	if f.down != nil {
		return fmt.Errorf("redis: %w", f.down)
	}
	return nil
}

func (f *fakeNumbering) ReserveApplication(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if f.apps[token] == nil {
		f.apps[token] = &fakeStream{}
	}
	return nil
}

func (f *fakeNumbering) ApplicationConfirmed(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.registerErr != nil {
		return f.registerErr
	}
	a := f.apps[token]
	if a == nil {
		a = &fakeStream{}
		f.apps[token] = a
	}
	a.version = max(a.version, 1)
	return nil
}

func (f *fakeNumbering) ChatConfirmed(_ context.Context, token string, chat int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.registerErr != nil {
		return f.registerErr
	}
	c := f.chats[fakeChat{token, chat}]
	if c == nil {
		c = &fakeStream{}
		f.chats[fakeChat{token, chat}] = c
	}
	c.version = max(c.version, 1)
	return nil
}

// next increments s's field if s is a confirmed stream.
func (f *fakeNumbering) next(s *fakeStream, field *int64) (int64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	if s == nil || s.version == 0 {
		return 0, commands.ErrUnknown
	}
	*field++
	return *field, nil
}

func (f *fakeNumbering) ReserveChatNumber(_ context.Context, token string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[token]
	if a == nil {
		return f.next(nil, nil)
	}
	return f.next(a, &a.last)
}

func (f *fakeNumbering) NextApplicationVersion(_ context.Context, token string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[token]
	if a == nil {
		return f.next(nil, nil)
	}
	return f.next(a, &a.version)
}

func (f *fakeNumbering) ReserveMessageNumber(_ context.Context, token string, chat int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.chats[fakeChat{token, chat}]
	if c == nil {
		return f.next(nil, nil)
	}
	return f.next(c, &c.last)
}

func (f *fakeNumbering) NextChatVersion(_ context.Context, token string, chat int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.chats[fakeChat{token, chat}]
	if c == nil {
		return f.next(nil, nil)
	}
	return f.next(c, &c.version)
}

func (f *fakeNumbering) NextMessageVersion(_ context.Context, token string, chat, number int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	m := fakeMessage{fakeChat{token, chat}, number}
	c := f.chats[m.fakeChat]
	if c == nil || number > c.last || f.failed[m] {
		return 0, commands.ErrUnknown
	}
	if f.deleted[m] {
		return 0, commands.ErrDeleted
	}
	f.edits[m]++
	return 1 + f.edits[m], nil
}

func (f *fakeNumbering) MessageFailed(_ context.Context, token string, chat, number int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	f.failed[fakeMessage{fakeChat{token, chat}, number}] = true
	return nil
}

func (f *fakeNumbering) MessageDeleted(_ context.Context, token string, chat, number int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	f.deleted[fakeMessage{fakeChat{token, chat}, number}] = true
	return nil
}

// lastChat is the last chat number handed out in token (0 for none, -1 for
// no such application).
func (f *fakeNumbering) lastChat(token string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.apps[token]; a != nil {
		return a.last
	}
	return -1
}

// lastMessage is the last message number handed out in a chat.
func (f *fakeNumbering) lastMessage(token string, chat int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.chats[fakeChat{token, chat}]; c != nil {
		return c.last
	}
	return -1
}

func (f *fakeNumbering) isFailed(token string, chat, number int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed[fakeMessage{fakeChat{token, chat}, number}]
}

func (f *fakeNumbering) tokens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.apps)
}

// result is how the broker answers one publish.
type result int

const (
	confirm result = iota
	notSent        // no connection: certainly not sent
	timeout        // sent, but no confirm came in time: it may be stored
	refused        // refused by a full queue: the event log is behind
)

// fakePublisher stands for the broker: it answers each publish with the
// next of results (then confirms), and records every attempt.
type fakePublisher struct {
	mu      sync.Mutex
	down    bool // known to have no connection: Connected is false and nothing is sent
	results []result
	// hold, when set, keeps each publish waiting until it is closed;
	// waiting gets a value as each one starts to wait.
	hold, waiting chan struct{}
	attempts      []attempt
}

type attempt struct {
	rec    events.Record
	result result
}

func (p *fakePublisher) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.down
}

func (p *fakePublisher) Publish(ctx context.Context, r events.Record) error {
	if p.hold != nil {
		p.waiting <- struct{}{}
		select {
		case <-p.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	res := confirm
	if p.down {
		res = notSent
	} else if len(p.results) > 0 {
		res, p.results = p.results[0], p.results[1:]
	}
	p.attempts = append(p.attempts, attempt{r, res})
	switch res {
	case notSent:
		return fmt.Errorf("no broker connection: %w", commands.ErrNotSent)
	case timeout:
		return errors.New("publish not confirmed by the broker: no confirm within 5s")
	case refused:
		return fmt.Errorf("publish not confirmed by the broker: %w", commands.ErrBacklogFull)
	}
	return nil
}

// sent returns the records that reached the broker, confirmed or not: the
// ones that may be stored.
func (p *fakePublisher) sent() []events.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []events.Record
	for _, a := range p.attempts {
		if a.result != notSent {
			out = append(out, a.rec)
		}
	}
	return out
}

func (p *fakePublisher) tries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.attempts)
}

// fakeKeys keeps Idempotency-Key records as idempotency.Store does, without
// the waiting: a claim on a key whose attempt is in flight is refused at
// once.
type fakeKeys struct {
	mu sync.Mutex
	// maxKeys is the most live keys one scope holds (0: no limit).
	maxKeys int
	// down, when set, fails every claim; saveErr every save.
	down, saveErr error
	records       map[fakeKey]*fakeRecord
	owners        int // the last owner handed out
	now           func() time.Time
}

type fakeKey struct{ scope, key string }

type fakeRecord struct {
	fingerprint string
	done        bool
	owner       string
	leaseEnds   time.Time
	expires     time.Time
	outcome     commands.Outcome
}

const (
	fakeLease     = 8 * time.Second
	fakeRetention = 24 * time.Hour
)

func newFakeKeys() *fakeKeys {
	return &fakeKeys{records: map[fakeKey]*fakeRecord{}, now: time.Now}
}

func (k *fakeKeys) Lease() time.Duration { return fakeLease }

func (k *fakeKeys) Claim(_ context.Context, scope, key, fingerprint string) (*commands.Claim, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.down != nil {
		return nil, fmt.Errorf("redis: %w", k.down)
	}
	now := k.now()
	id := fakeKey{scope, key}
	k.owners++
	c := &commands.Claim{State: commands.ClaimFresh, Scope: scope, Key: key, Owner: strconv.Itoa(k.owners)}
	r := k.records[id]
	if r == nil {
		var live int
		oldest := now.Add(fakeRetention)
		for other, o := range k.records {
			if other.scope == scope {
				live++
				if o.expires.Before(oldest) {
					oldest = o.expires
				}
			}
		}
		if k.maxKeys > 0 && live >= k.maxKeys {
			return nil, &commands.RetryError{Err: commands.ErrKeyLimit, After: oldest.Sub(now)}
		}
		k.records[id] = &fakeRecord{fingerprint: fingerprint, owner: c.Owner, leaseEnds: now.Add(fakeLease), expires: now.Add(fakeRetention)}
		return c, nil
	}
	switch {
	case r.fingerprint != fingerprint:
		return nil, commands.ErrKeyReused
	case r.done:
		c.State, c.Outcome = commands.ClaimReplay, r.outcome
		return c, nil
	case now.Before(r.leaseEnds):
		return nil, &commands.RetryError{Err: commands.ErrKeyInFlight, After: r.leaseEnds.Sub(now)}
	}
	// Its attempt is over without an outcome: take it over.
	c.Outcome = r.outcome
	if r.outcome.EventID != uuid.Nil {
		c.State = commands.ClaimResume
	}
	r.owner, r.leaseEnds = c.Owner, now.Add(fakeLease)
	return c, nil
}

// record returns c's record while c owns it.
func (k *fakeKeys) record(c *commands.Claim) *fakeRecord {
	if r := k.records[fakeKey{c.Scope, c.Key}]; r != nil && r.owner == c.Owner {
		return r
	}
	return nil
}

func (k *fakeKeys) Save(_ context.Context, c *commands.Claim, o commands.Outcome) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.saveErr != nil {
		return k.saveErr
	}
	r := k.record(c)
	if r == nil {
		return commands.ErrKeyLost
	}
	r.outcome, c.Outcome = o, o
	return nil
}

func (k *fakeKeys) Done(_ context.Context, c *commands.Claim) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	// The confirm is a fact, whoever owns the key now.
	if r := k.records[fakeKey{c.Scope, c.Key}]; r != nil && r.outcome.EventID == c.Outcome.EventID {
		r.done, r.owner = true, ""
	}
	return nil
}

func (k *fakeKeys) Release(_ context.Context, c *commands.Claim) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.record(c) != nil {
		delete(k.records, fakeKey{c.Scope, c.Key})
	}
	return nil
}

func (k *fakeKeys) Abandon(_ context.Context, c *commands.Claim) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r := k.record(c); r != nil {
		r.leaseEnds = time.Time{}
	}
	return nil
}

// held reports whether a record of key in scope exists.
func (k *fakeKeys) held(scope, key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.records[fakeKey{scope, key}] != nil
}
