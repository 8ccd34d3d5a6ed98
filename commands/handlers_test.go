package commands_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
)

// These tests run the command handlers against in-memory stand-ins for Redis
// and the broker (fakes_test.go), so they need no service and take
// milliseconds; cmd/chat's tests run the same rules against the real ones.

const (
	app    = "abcdefghijklmnopqrstuvwxyz" // has chats 1 and 2, each with messages 1 to 3
	other  = "bbbbbbbbbbbbbbbbbbbbbbbbbb" // has chat 1, with no messages
	nobody = "zzzzzzzzzzzzzzzzzzzzzzzzzz" // no such application
)

type rig struct {
	h    *commands.Handlers
	nums *fakeNumbering
	pub  *fakePublisher
	keys *fakeKeys
	log  bytes.Buffer
}

func newRig() *rig {
	r := &rig{nums: newFakeNumbering(), pub: &fakePublisher{}, keys: newFakeKeys()}
	r.nums.addApp(app, 2, 3)
	r.nums.addApp(other, 1, 0)
	r.h = commands.New(commands.Config{
		Numbering: r.nums,
		Keys:      r.keys,
		Publisher: r.pub,
		Log:       slog.New(slog.NewTextHandler(&r.log, nil)),
	})
	return r
}

// command is one command, run by a rig, as the API would.
type command struct {
	name string
	run  func(ctx context.Context, h *commands.Handlers) (number int64, at time.Time, err error)
}

func createApplication(name, key string) command {
	return command{"CreateApplication", func(ctx context.Context, h *commands.Handlers) (int64, time.Time, error) {
		a, err := h.CreateApplication(ctx, commands.CreateApplication{Name: name, IdempotencyKey: key})
		return 0, a.CreatedAt, err
	}}
}

func renameApplication(token, name, key string) command {
	return command{"RenameApplication", func(ctx context.Context, h *commands.Handlers) (int64, time.Time, error) {
		a, err := h.RenameApplication(ctx, commands.RenameApplication{Token: token, Name: name, IdempotencyKey: key})
		return 0, a.UpdatedAt, err
	}}
}

func createChat(token, name, key string) command {
	return command{"CreateChat", func(ctx context.Context, h *commands.Handlers) (int64, time.Time, error) {
		c, err := h.CreateChat(ctx, commands.CreateChat{Token: token, Name: name, HasName: name != "", IdempotencyKey: key})
		return c.Number, c.CreatedAt, err
	}}
}

func renameChat(token string, chat int64, name, key string) command {
	return command{"RenameChat", func(ctx context.Context, h *commands.Handlers) (int64, time.Time, error) {
		c, err := h.RenameChat(ctx, commands.RenameChat{Token: token, Number: chat, Name: name, IdempotencyKey: key})
		return c.Number, c.UpdatedAt, err
	}}
}

func createMessage(token string, chat int64, body, key string) command {
	return command{"CreateMessage", func(ctx context.Context, h *commands.Handlers) (int64, time.Time, error) {
		m, err := h.CreateMessage(ctx, commands.CreateMessage{Token: token, ChatNumber: chat, Body: body, IdempotencyKey: key})
		return m.Number, m.CreatedAt, err
	}}
}

func editMessage(token string, chat, number int64, body, key string) command {
	return command{"EditMessage", func(ctx context.Context, h *commands.Handlers) (int64, time.Time, error) {
		m, err := h.EditMessage(ctx, commands.EditMessage{Token: token, ChatNumber: chat, Number: number, Body: body, IdempotencyKey: key})
		return m.Number, m.UpdatedAt, err
	}}
}

func deleteMessage(token string, chat, number int64, key string) command {
	return command{"DeleteMessage", func(ctx context.Context, h *commands.Handlers) (int64, time.Time, error) {
		d, err := h.DeleteMessage(ctx, commands.DeleteMessage{Token: token, ChatNumber: chat, Number: number, IdempotencyKey: key})
		return d.Number, d.DeletedAt, err
	}}
}

// everyCommand is one of each command on what the rig holds.
func everyCommand(key string) []command {
	return []command{
		createApplication("acme", key),
		renameApplication(app, "acme 2", key),
		createChat(app, "general", key),
		renameChat(app, 1, "random", key),
		createMessage(app, 1, "hello", key),
		editMessage(app, 1, 2, "hello again", key),
		deleteMessage(app, 1, 3, key),
	}
}

func (r *rig) do(c command) (int64, time.Time, error) {
	return c.run(context.Background(), r.h)
}

// snapshot is what the rig's numbering has handed out.
type snapshot struct {
	tokens              int
	chats, otherChats   int64
	messages, messages2 int64
	otherMessages       int64
}

func (r *rig) snapshot() snapshot {
	return snapshot{
		tokens:        r.nums.tokens(),
		chats:         r.nums.lastChat(app),
		otherChats:    r.nums.lastChat(other),
		messages:      r.nums.lastMessage(app, 1),
		messages2:     r.nums.lastMessage(app, 2),
		otherMessages: r.nums.lastMessage(other, 1),
	}
}

// wantError fails t unless err is an *apperr.Error of kind and slug.
func wantError(t *testing.T, err error, kind apperr.Kind, slug string) *apperr.Error {
	t.Helper()
	e := apperr.As(err)
	if e == nil || e.Kind != kind || e.Slug != slug {
		t.Fatalf("err = %v, want %s (kind %d)", err, slug, kind)
	}
	return e
}

func decode(t *testing.T, rec events.Record) events.Envelope {
	t.Helper()
	env, err := events.NewCodec().Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestCommandsPublishTheirEvent: each command publishes one event, in its
// stream, at the next version, carrying the request's correlation id, and
// answers the number it took and the event's time.
func TestCommandsPublishTheirEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cmd     command
		number  int64
		event   events.Event // nil for a new application, whose token is new
		version int64
	}{
		{createApplication("acme", ""), 0, nil, 1},
		{renameApplication(app, "acme 2", ""), 0, events.ApplicationRenamed{Token: app, Name: "acme 2"}, 2},
		{createChat(app, "general", ""), 3, events.ChatCreated{Token: app, Number: 3, Name: "general"}, 1},
		{createChat(app, "", ""), 3, events.ChatCreated{Token: app, Number: 3}, 1},
		{renameChat(app, 2, "random", ""), 2, events.ChatRenamed{Token: app, Number: 2, Name: "random"}, 2},
		{createMessage(app, 2, "hello", ""), 4, events.MessageCreated{Token: app, ChatNumber: 2, Number: 4, Body: "hello"}, 1},
		{editMessage(app, 2, 3, "hello again", ""), 3, events.MessageEdited{Token: app, ChatNumber: 2, Number: 3, Body: "hello again"}, 2},
		{deleteMessage(app, 2, 3, ""), 3, events.MessageDeleted{Token: app, ChatNumber: 2, Number: 3}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.cmd.name, func(t *testing.T) {
			t.Parallel()
			r := newRig()
			ctx := events.WithCorrelationID(context.Background(), "req-1")
			number, at, err := tc.cmd.run(ctx, r.h)
			if err != nil {
				t.Fatal(err)
			}
			sent := r.pub.sent()
			if len(sent) != 1 {
				t.Fatalf("%d events published, want 1", len(sent))
			}
			env := decode(t, sent[0])
			if tc.event == nil {
				if _, ok := env.Event.(events.ApplicationCreated); !ok {
					t.Fatalf("published %T, want ApplicationCreated", env.Event)
				}
			} else if env.Event != tc.event {
				t.Errorf("published %#v, want %#v", env.Event, tc.event)
			}
			if number != tc.number || env.StreamVersion != tc.version {
				t.Errorf("answered number %d with version %d, want %d with version %d", number, env.StreamVersion, tc.number, tc.version)
			}
			if !at.Equal(env.OccurredAt) || at.IsZero() {
				t.Errorf("answered time %v, the event's is %v", at, env.OccurredAt)
			}
			if env.CorrelationID != "req-1" {
				t.Errorf("correlation id %q, want the request's", env.CorrelationID)
			}
		})
	}
}

// TestCreatesAreUsableAtOnce: a confirmed create is registered before it
// answers, so the next command can address it at once, before any
// projection has seen it.
func TestCreatesAreUsableAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig()
	a, err := r.h.CreateApplication(context.Background(), commands.CreateApplication{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if !commands.ValidToken(a.Token) || a.Token == app {
		t.Fatalf("new token %q", a.Token)
	}
	c, err := r.h.CreateChat(context.Background(), commands.CreateChat{Token: a.Token})
	if err != nil || c.Number != 1 {
		t.Fatalf("the first chat of a new application: %+v, %v", c, err)
	}
	m, err := r.h.CreateMessage(context.Background(), commands.CreateMessage{Token: a.Token, ChatNumber: 1, Body: "hi"})
	if err != nil || m.Number != 1 {
		t.Fatalf("the first message of a new chat: %+v, %v", m, err)
	}
}

// TestBadInputChangesNothing: invalid input is refused before anything is
// reserved or published.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", commands.MaxNameLength+1)
	huge := strings.Repeat("a", commands.MaxBodyBytes+1)
	tests := []struct {
		what string
		cmd  command
		kind apperr.Kind
		slug string
	}{
		{"an empty application name", createApplication(" ", ""), apperr.KindValidation, "validation_failed"},
		{"a long application name", createApplication(long, ""), apperr.KindValidation, "validation_failed"},
		{"an empty new name", renameApplication(app, "", ""), apperr.KindValidation, "validation_failed"},
		{"a long chat name", createChat(app, long, ""), apperr.KindValidation, "validation_failed"},
		{"a blank chat name sent", command{"CreateChat", func(ctx context.Context, h *commands.Handlers) (int64, time.Time, error) {
			c, err := h.CreateChat(ctx, commands.CreateChat{Token: app, Name: "\t", HasName: true})
			return c.Number, c.CreatedAt, err
		}}, apperr.KindValidation, "validation_failed"},
		{"an empty chat rename", renameChat(app, 1, "", ""), apperr.KindValidation, "validation_failed"},
		{"an empty body", createMessage(app, 1, "  ", ""), apperr.KindValidation, "validation_failed"},
		{"a body over 64 KiB", createMessage(app, 1, huge, ""), apperr.KindValidation, "validation_failed"},
		{"an empty edit", editMessage(app, 1, 1, "", ""), apperr.KindValidation, "validation_failed"},
		{"a malformed token", createChat("not-a-token", "x", ""), apperr.KindNotFound, "not_found"},
		{"an uppercase token", createMessage(strings.ToUpper(app), 1, "x", ""), apperr.KindNotFound, "not_found"},
		{"chat 0", createMessage(app, 0, "x", ""), apperr.KindNotFound, "not_found"},
		{"a chat past the largest number", renameChat(app, 1<<32, "x", ""), apperr.KindNotFound, "not_found"},
		{"message 0", editMessage(app, 1, 0, "x", ""), apperr.KindNotFound, "not_found"},
		{"a delete of message 0", deleteMessage(app, 1, 0, ""), apperr.KindNotFound, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			r := newRig()
			before := r.snapshot()
			_, _, err := r.do(tc.cmd)
			wantError(t, err, tc.kind, tc.slug)
			if after := r.snapshot(); after != before || r.pub.tries() != 0 {
				t.Errorf("reserved %+v (was %+v) and published %d events", after, before, r.pub.tries())
			}
		})
	}
}

// TestUnknownTargetsAreNotFound: a command on an application, chat or
// message that does not exist (or whose create was never confirmed) is 404,
// and publishes nothing.
func TestUnknownTargetsAreNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		what, message string
		cmd           command
	}{
		{"a chat in an unknown application", "application not found", createChat(nobody, "x", "")},
		{"a rename of an unknown application", "application not found", renameApplication(nobody, "x", "")},
		{"a message in an unknown chat", "chat not found", createMessage(app, 3, "x", "")},
		{"a message in another application's chat number", "chat not found", createMessage(other, 2, "x", "")},
		{"a rename of an unknown chat", "chat not found", renameChat(app, 9, "x", "")},
		{"an edit of a number not handed out", "message not found", editMessage(app, 1, 4, "x", "")},
		{"an edit in an unknown chat", "message not found", editMessage(app, 7, 1, "x", "")},
		{"a delete of a number not handed out", "message not found", deleteMessage(app, 1, 4, "")},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			r := newRig()
			before := r.snapshot()
			_, _, err := r.do(tc.cmd)
			if e := wantError(t, err, apperr.KindNotFound, "not_found"); e.Message != tc.message {
				t.Errorf("message %q, want %q", e.Message, tc.message)
			}
			if after := r.snapshot(); after != before || r.pub.tries() != 0 {
				t.Errorf("reserved %+v (was %+v) and published %d events", after, before, r.pub.tries())
			}
		})
	}

	// An application whose create was reserved but never confirmed takes no
	// chats.
	r := newRig()
	if err := r.nums.ReserveApplication(context.Background(), nobody); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.do(createChat(nobody, "x", ""))
	wantError(t, err, apperr.KindNotFound, "not_found")
}

// TestDeletedMessagesRefuseChanges: once a delete is confirmed, an edit or
// a second delete of the message is 404 message_deleted and publishes
// nothing; a retry of the delete under its Idempotency-Key gets the
// first answer.
func TestDeletedMessagesRefuseChanges(t *testing.T) {
	t.Parallel()
	r := newRig()
	if _, _, err := r.do(deleteMessage(app, 1, 2, "k1")); err != nil {
		t.Fatal(err)
	}
	published := r.pub.tries()
	for _, cmd := range []command{editMessage(app, 1, 2, "x", ""), deleteMessage(app, 1, 2, ""), deleteMessage(app, 1, 2, "k2")} {
		_, _, err := r.do(cmd)
		if e := wantError(t, err, apperr.KindNotFound, "message_deleted"); e.Message != "message deleted" {
			t.Errorf("%s: message %q", cmd.name, e.Message)
		}
	}
	if _, _, err := r.do(deleteMessage(app, 1, 2, "k1")); err != nil {
		t.Errorf("a retry under the delete's key: %v", err)
	}
	if r.pub.tries() != published {
		t.Errorf("%d more events published, want none", r.pub.tries()-published)
	}
	if _, _, err := r.do(editMessage(app, 1, 1, "x", "")); err != nil {
		t.Errorf("another message of the chat: %v", err)
	}
}

// TestNumberingUnavailable: with Redis unreachable or its numbering state
// being rebuilt, every command is 503 (Redis named as the cause) and
// nothing is published.
func TestNumberingUnavailable(t *testing.T) {
	t.Parallel()
	for _, down := range []error{errors.New("dial tcp 127.0.0.1:6379: connection refused"), commands.ErrRecovering} {
		for _, cmd := range everyCommand("") {
			t.Run(cmd.name+"/"+down.Error(), func(t *testing.T) {
				t.Parallel()
				r := newRig()
				r.nums.down = down
				_, _, err := r.do(cmd)
				e := wantError(t, err, apperr.KindUnavailable, "unavailable")
				if e.Dependency != apperr.DepRedis || !errors.Is(err, down) {
					t.Errorf("err %v names %q", err, e.Dependency)
				}
				if r.pub.tries() != 0 {
					t.Errorf("%d publishes with numbering down", r.pub.tries())
				}
			})
		}
	}
}

// TestBrokerKnownDownReservesNothing: while the publisher knows it has no
// connection, a command is refused with 503 before it reserves anything, so
// an outage leaves no gap in the numbering.
func TestBrokerKnownDownReservesNothing(t *testing.T) {
	t.Parallel()
	for _, cmd := range everyCommand("") {
		t.Run(cmd.name, func(t *testing.T) {
			t.Parallel()
			r := newRig()
			r.pub.down = true
			before := r.snapshot()
			_, _, err := r.do(cmd)
			if e := wantError(t, err, apperr.KindUnavailable, "unavailable"); e.Dependency != apperr.DepBroker {
				t.Errorf("names %q, want the broker", e.Dependency)
			}
			if after := r.snapshot(); after != before || r.pub.tries() != 0 {
				t.Errorf("reserved %+v (was %+v) and tried %d publishes", after, before, r.pub.tries())
			}
		})
	}
	r := newRig()
	r.pub.down = true
	_, _, _ = r.do(createMessage(app, 1, "refused", ""))
	r.pub.down = false
	if n, _, err := r.do(createMessage(app, 1, "after", "")); err != nil || n != 4 {
		t.Errorf("the first message after the outage: %d, %v; want 4", n, err)
	}
}

// TestPublishFailures: a publish that fails is 503 either way; a message
// create that was certainly not sent has its number marked failed (so it is
// never edited), one whose confirm did not come is left unmarked (it may yet
// be stored, and then be edited), and a create not confirmed is not
// registered.
func TestPublishFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		what       string
		result     result
		markFailed bool
	}{{"not sent", notSent, true}, {"no confirm in time", timeout, false}} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			r := newRig()
			r.pub.results = []result{tc.result}
			_, _, err := r.do(createMessage(app, 1, "lost", ""))
			if e := wantError(t, err, apperr.KindUnavailable, "unavailable"); e.Dependency != apperr.DepBroker {
				t.Errorf("names %q, want the broker", e.Dependency)
			}
			if got := r.nums.isFailed(app, 1, 4); got != tc.markFailed {
				t.Errorf("number 4 marked failed: %v, want %v", got, tc.markFailed)
			}
			_, _, err = r.do(editMessage(app, 1, 4, "edited", ""))
			if tc.markFailed {
				wantError(t, err, apperr.KindNotFound, "not_found")
			} else if err != nil {
				t.Errorf("an edit of the message that may be stored: %v", err)
			}
			// The number is used up: the next create takes the one after it.
			if n, _, err := r.do(createMessage(app, 1, "next", "")); err != nil || n != 5 {
				t.Errorf("the next message: %d, %v; want 5", n, err)
			}

			r.pub.results = []result{tc.result}
			_, _, err = r.do(createChat(app, "lost", ""))
			wantError(t, err, apperr.KindUnavailable, "unavailable")
			_, _, err = r.do(createMessage(app, 3, "in the chat not confirmed", ""))
			wantError(t, err, apperr.KindNotFound, "not_found")
		})
	}
}

// TestBacklogFull: a create refused because its partition's queue is full
// answers 503 backlog_full with a Retry-After, and is treated as one whose
// outcome is unknown: its number is not marked failed, and a retry under
// the same Idempotency-Key publishes the same event again.
func TestBacklogFull(t *testing.T) {
	t.Parallel()
	r := newRig()
	r.pub.results = []result{refused}
	_, _, err := r.do(createMessage(app, 1, "refused", ""))
	if e := wantError(t, err, apperr.KindOverloaded, "backlog_full"); e.RetryAfter <= 0 {
		t.Errorf("Retry-After %s, want a wait", e.RetryAfter)
	}
	if r.nums.isFailed(app, 1, 4) {
		t.Error("the refused message's number was marked failed")
	}

	r.pub.results = []result{refused}
	_, _, err = r.do(createMessage(app, 1, "retried", "key-1"))
	wantError(t, err, apperr.KindOverloaded, "backlog_full")
	n, _, err := r.do(createMessage(app, 1, "retried", "key-1"))
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	sent := r.pub.sent()
	if len(sent) < 2 || sent[len(sent)-1].EventID != sent[len(sent)-2].EventID {
		t.Errorf("the retry under the key did not publish the refused event again (number %d)", n)
	}
}

// TestRegistrationFailureAfterConfirm: once the broker confirmed a create,
// a failure to register it in Redis is logged, not answered: the event is
// stored, and the registry projection registers it.
func TestRegistrationFailureAfterConfirm(t *testing.T) {
	t.Parallel()
	r := newRig()
	r.nums.registerErr = errors.New("redis: i/o timeout")
	n, _, err := r.do(createChat(app, "general", ""))
	if err != nil || n != 3 {
		t.Fatalf("create: %d, %v; want chat 3", n, err)
	}
	if len(r.pub.sent()) != 1 {
		t.Errorf("%d events published, want 1", len(r.pub.sent()))
	}
	if !strings.Contains(r.log.String(), "could not record a confirmed create") {
		t.Errorf("the failed registration is not logged:\n%s", r.log.String())
	}
}

// TestIdempotentReplay: a retry of a confirmed keyed command answers the
// first answer (number and time), reserves and publishes nothing, and needs
// no broker.
func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	for _, cmd := range everyCommand("key-1") {
		t.Run(cmd.name, func(t *testing.T) {
			t.Parallel()
			r := newRig()
			n1, at1, err := r.do(cmd)
			if err != nil {
				t.Fatal(err)
			}
			after := r.snapshot()
			r.pub.down = true
			n2, at2, err := r.do(cmd)
			if err != nil || n2 != n1 || !at2.Equal(at1) {
				t.Errorf("retry: %d at %v, %v; want %d at %v", n2, at2, err, n1, at1)
			}
			if r.snapshot() != after || r.pub.tries() != 1 {
				t.Errorf("the retry reserved %+v (was %+v) or published (%d publishes)", r.snapshot(), after, r.pub.tries())
			}
		})
	}
	// A new application's retry answers its token.
	r := newRig()
	first, err := r.h.CreateApplication(context.Background(), commands.CreateApplication{Name: "acme", IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.h.CreateApplication(context.Background(), commands.CreateApplication{Name: "acme", IdempotencyKey: "k"})
	if err != nil || again.Token != first.Token || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("retry answered %+v, %v; want %+v", again, err, first)
	}
}

// TestIdempotentResumeAfterTimeout: a keyed command whose confirm did not
// come keeps its record; its retry publishes the very same event again
// (same event id, version and time: the event store keeps it once) and
// answers the first attempt's number, without reserving another.
func TestIdempotentResumeAfterTimeout(t *testing.T) {
	t.Parallel()
	for _, cmd := range everyCommand("key-1") {
		t.Run(cmd.name, func(t *testing.T) {
			t.Parallel()
			r := newRig()
			r.pub.results = []result{timeout}
			if _, _, err := r.do(cmd); apperr.As(err) == nil || apperr.As(err).Kind != apperr.KindUnavailable {
				t.Fatalf("first attempt: %v, want unavailable", err)
			}
			reserved := r.snapshot()
			n, at, err := r.do(cmd)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			sent := r.pub.sent()
			if len(sent) != 2 {
				t.Fatalf("%d events published, want the first and its copy", len(sent))
			}
			first, again := decode(t, sent[0]), decode(t, sent[1])
			if again.EventID != first.EventID || again.StreamVersion != first.StreamVersion || !again.OccurredAt.Equal(first.OccurredAt) || again.Event != first.Event {
				t.Errorf("the retry published %+v, not the first attempt's %+v", again, first)
			}
			if !at.Equal(first.OccurredAt) || r.snapshot() != reserved {
				t.Errorf("the retry answered %d at %v (the event's time is %v) and reserved %+v (was %+v)", n, at, first.OccurredAt, r.snapshot(), reserved)
			}
			// Now confirmed, a third try replays.
			if n3, _, err := r.do(cmd); err != nil || n3 != n || r.pub.tries() != 2 {
				t.Errorf("third try: %d, %v, %d publishes", n3, err, r.pub.tries())
			}
		})
	}
}

// TestIdempotencyKeyRefusals: the same key with another request is 422;
// a retry while the first attempt is in flight is 409 with Retry-After;
// past the limit of live keys a new key is 429 with the time until the
// oldest expires. None of them reserves or publishes anything.
func TestIdempotencyKeyRefusals(t *testing.T) {
	t.Parallel()
	t.Run("reused", func(t *testing.T) {
		t.Parallel()
		r := newRig()
		if _, _, err := r.do(createChat(app, "general", "k")); err != nil {
			t.Fatal(err)
		}
		before := r.snapshot()
		for _, cmd := range []command{createChat(app, "random", "k"), renameApplication(app, "general", "k")} {
			_, _, err := r.do(cmd)
			wantError(t, err, apperr.KindValidation, "idempotency_key_reused")
		}
		if r.snapshot() != before || r.pub.tries() != 1 {
			t.Errorf("a refused reuse reserved %+v (was %+v) or published", r.snapshot(), before)
		}
		// Another application's key of the same name is another key.
		if n, _, err := r.do(createChat(other, "random", "k")); err != nil || n != 2 {
			t.Errorf("the same key in another application: %d, %v", n, err)
		}
	})
	t.Run("in flight", func(t *testing.T) {
		t.Parallel()
		r := newRig()
		r.pub.hold, r.pub.waiting = make(chan struct{}), make(chan struct{}, 4)
		type answer struct {
			n   int64
			err error
		}
		first := make(chan answer, 1)
		go func() {
			n, _, err := r.do(createMessage(app, 1, "hi", "k"))
			first <- answer{n, err}
		}()
		<-r.pub.waiting
		_, _, err := r.do(createMessage(app, 1, "hi", "k"))
		if e := wantError(t, err, apperr.KindConflict, "idempotency_key_in_flight"); e.RetryAfter <= 0 {
			t.Errorf("no Retry-After: %+v", e)
		}
		if got := r.nums.lastMessage(app, 1); got != 4 {
			t.Errorf("last message number %d, want only the first attempt's 4", got)
		}
		close(r.pub.hold)
		if a := <-first; a.err != nil || a.n != 4 {
			t.Fatalf("first attempt: %d, %v", a.n, a.err)
		}
		if n, _, err := r.do(createMessage(app, 1, "hi", "k")); err != nil || n != 4 || r.pub.tries() != 1 {
			t.Errorf("retry after the first finished: %d, %v, %d publishes", n, err, r.pub.tries())
		}
	})
	t.Run("limit", func(t *testing.T) {
		t.Parallel()
		r := newRig()
		r.keys.maxKeys = 2
		for _, key := range []string{"k1", "k2"} {
			if _, _, err := r.do(createMessage(app, 1, key, key)); err != nil {
				t.Fatal(err)
			}
		}
		before := r.snapshot()
		_, _, err := r.do(createMessage(app, 1, "k3", "k3"))
		if e := wantError(t, err, apperr.KindLimited, "idempotency_key_limit"); e.RetryAfter < fakeRetention-time.Minute || e.RetryAfter > fakeRetention {
			t.Errorf("Retry-After %v, want the time until the oldest key expires (about %v)", e.RetryAfter, fakeRetention)
		}
		if r.snapshot() != before {
			t.Errorf("a refused key reserved %+v (was %+v)", r.snapshot(), before)
		}
		// Held keys still replay, commands without a key go on, and other
		// applications have keys of their own.
		if n, _, err := r.do(createMessage(app, 1, "k1", "k1")); err != nil || n != 4 {
			t.Errorf("a held key: %d, %v", n, err)
		}
		if n, _, err := r.do(createMessage(app, 1, "no key", "")); err != nil || n != 6 {
			t.Errorf("without a key: %d, %v", n, err)
		}
		if _, _, err := r.do(createMessage(other, 1, "k3", "k3")); err != nil {
			t.Errorf("another application's key: %v", err)
		}
	})
}

// TestIdempotencyKeyAfterFailure: a failure that certainly published
// nothing forgets the key, so the retry runs afresh; an uncertain one keeps
// it, so the retry publishes the same event.
func TestIdempotencyKeyAfterFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		what  string
		setup func(r *rig)
		// kept: the record outlives the failure; failed: number 4 is
		// marked failed.
		kept, failed bool
		// retryNumber is the message number the retry answers, or
		// retrySlug the error it gets.
		retryNumber int64
		retrySlug   string
	}{
		{"the broker known down", func(r *rig) { r.pub.down = true }, false, false, 4, ""},
		{"not sent", func(r *rig) { r.pub.results = []result{notSent} }, false, true, 5, ""},
		{"the record not written", func(r *rig) { r.keys.saveErr = errors.New("redis: i/o timeout") }, false, true, 5, ""},
		// The key is another attempt's now: this one publishes nothing and
		// leaves the record to it.
		{"the key taken over", func(r *rig) { r.keys.saveErr = commands.ErrKeyLost }, true, true, 0, "idempotency_key_in_flight"},
		{"no confirm in time", func(r *rig) { r.pub.results = []result{timeout} }, true, false, 4, ""},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			r := newRig()
			tc.setup(r)
			_, _, err := r.do(createMessage(app, 1, "hi", "k"))
			wantError(t, err, apperr.KindUnavailable, "unavailable")
			if r.keys.held(app, "k") != tc.kept || r.nums.isFailed(app, 1, 4) != tc.failed {
				t.Errorf("record kept %v, number 4 failed %v; want %v, %v", r.keys.held(app, "k"), r.nums.isFailed(app, 1, 4), tc.kept, tc.failed)
			}
			r.pub.down, r.keys.saveErr = false, nil
			n, _, err := r.do(createMessage(app, 1, "hi", "k"))
			if tc.retrySlug != "" {
				wantError(t, err, apperr.KindConflict, tc.retrySlug)
			} else if err != nil || n != tc.retryNumber {
				t.Errorf("retry: %d, %v; want %d", n, err, tc.retryNumber)
			}
		})
	}

	// A 4xx forgets the key too: once the chat exists, the retry runs.
	r := newRig()
	_, _, err := r.do(createMessage(app, 3, "hi", "k"))
	wantError(t, err, apperr.KindNotFound, "not_found")
	if _, _, err := r.do(createChat(app, "", "")); err != nil {
		t.Fatal(err)
	}
	if n, _, err := r.do(createMessage(app, 3, "hi", "k")); err != nil || n != 1 {
		t.Errorf("retry once the chat exists: %d, %v", n, err)
	}
}

// TestIdempotentResumeWhileBrokerDown: the retry of an attempt whose outcome
// is unknown, while the broker is known to be down, is 503 and keeps the
// record; the next retry publishes the first attempt's event.
func TestIdempotentResumeWhileBrokerDown(t *testing.T) {
	t.Parallel()
	r := newRig()
	r.pub.results = []result{timeout}
	cmd := createMessage(app, 1, "hi", "k")
	_, _, _ = r.do(cmd)
	r.pub.down = true
	_, _, err := r.do(cmd)
	wantError(t, err, apperr.KindUnavailable, "unavailable")
	if !r.keys.held(app, "k") {
		t.Fatal("the record of an attempt that may be stored was forgotten")
	}
	r.pub.down = false
	n, _, err := r.do(cmd)
	sent := r.pub.sent()
	if err != nil || n != 4 || len(sent) != 2 || sent[1].EventID != sent[0].EventID {
		t.Errorf("retry: %d, %v; %d events sent", n, err, len(sent))
	}
}

// TestIdempotencyRecordsUnavailable: when the key's record cannot be read,
// a keyed command is 503 before it reserves anything; a command without a
// key does not need it.
func TestIdempotencyRecordsUnavailable(t *testing.T) {
	t.Parallel()
	r := newRig()
	r.keys.down = errors.New("dial tcp: connection refused")
	before := r.snapshot()
	_, _, err := r.do(createMessage(app, 1, "hi", "k"))
	if e := wantError(t, err, apperr.KindUnavailable, "unavailable"); e.Dependency != apperr.DepRedis {
		t.Errorf("names %q, want Redis", e.Dependency)
	}
	if r.snapshot() != before || r.pub.tries() != 0 {
		t.Errorf("reserved %+v (was %+v) or published", r.snapshot(), before)
	}
	if n, _, err := r.do(createMessage(app, 1, "hi", "")); err != nil || n != 4 {
		t.Errorf("without a key: %d, %v", n, err)
	}
}
