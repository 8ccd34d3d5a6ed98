package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/readmodel"
)

// In-memory stand-ins for the command handlers and the read side, so that
// the HTTP mapping is tested without a service. The rules behind the
// commands are commands' own tests; here a command answers as
// commands.Handlers does when it succeeds, or fails with the error it is
// given.

// fakeNow is the time every fake command's event occurred at.
var fakeNow = time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)

const (
	fakeToken  = "cccccccccccccccccccccccccc" // the token a new application gets
	fakeNumber = 7                            // the number a new chat or message gets
)

type fakeCommands struct {
	mu  sync.Mutex
	err error // when set, every command fails with it
	got []any // the commands received, in order
}

func (f *fakeCommands) take(cmd any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, cmd)
	return f.err
}

func (f *fakeCommands) received() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]any(nil), f.got...)
}

func (f *fakeCommands) CreateApplication(_ context.Context, cmd commands.CreateApplication) (commands.Application, error) {
	if err := f.take(cmd); err != nil {
		return commands.Application{}, err
	}
	return commands.Application{Token: fakeToken, Name: cmd.Name, Timestamps: commands.Timestamps{CreatedAt: fakeNow, UpdatedAt: fakeNow}}, nil
}

func (f *fakeCommands) RenameApplication(_ context.Context, cmd commands.RenameApplication) (commands.Application, error) {
	if err := f.take(cmd); err != nil {
		return commands.Application{}, err
	}
	return commands.Application{Token: cmd.Token, Name: cmd.Name, Timestamps: commands.Timestamps{UpdatedAt: fakeNow}}, nil
}

func (f *fakeCommands) CreateChat(_ context.Context, cmd commands.CreateChat) (commands.Chat, error) {
	if err := f.take(cmd); err != nil {
		return commands.Chat{}, err
	}
	return commands.Chat{Number: fakeNumber, Name: cmd.Name, Timestamps: commands.Timestamps{CreatedAt: fakeNow, UpdatedAt: fakeNow}}, nil
}

func (f *fakeCommands) RenameChat(_ context.Context, cmd commands.RenameChat) (commands.Chat, error) {
	if err := f.take(cmd); err != nil {
		return commands.Chat{}, err
	}
	return commands.Chat{Number: cmd.Number, Name: cmd.Name, Timestamps: commands.Timestamps{UpdatedAt: fakeNow}}, nil
}

func (f *fakeCommands) CreateMessage(_ context.Context, cmd commands.CreateMessage) (commands.Message, error) {
	if err := f.take(cmd); err != nil {
		return commands.Message{}, err
	}
	return commands.Message{ChatNumber: cmd.ChatNumber, Number: fakeNumber, Body: cmd.Body, Timestamps: commands.Timestamps{CreatedAt: fakeNow, UpdatedAt: fakeNow}}, nil
}

func (f *fakeCommands) EditMessage(_ context.Context, cmd commands.EditMessage) (commands.Message, error) {
	if err := f.take(cmd); err != nil {
		return commands.Message{}, err
	}
	return commands.Message{ChatNumber: cmd.ChatNumber, Number: cmd.Number, Body: cmd.Body, Timestamps: commands.Timestamps{UpdatedAt: fakeNow}}, nil
}

func (f *fakeCommands) DeleteMessage(_ context.Context, cmd commands.DeleteMessage) (commands.Deleted, error) {
	if err := f.take(cmd); err != nil {
		return commands.Deleted{}, err
	}
	return commands.Deleted{ChatNumber: cmd.ChatNumber, Number: cmd.Number, DeletedAt: fakeNow}, nil
}

// fakeQueries is a read side holding what it is given; like
// readmodel.Queries it answers not_found for what it does not hold.
type fakeQueries struct {
	mu       sync.Mutex
	err      error // when set, every read fails with it
	apps     map[string]readmodel.Application
	chats    map[string]readmodel.Chat    // by "token/chat"
	messages map[string]readmodel.Message // by "token/chat/number"
	asked    int
}

func newFakeQueries() *fakeQueries {
	return &fakeQueries{apps: map[string]readmodel.Application{}, chats: map[string]readmodel.Chat{}, messages: map[string]readmodel.Message{}}
}

func (q *fakeQueries) read() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.asked++
	return q.err
}

func (q *fakeQueries) reads() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.asked
}

func (q *fakeQueries) Application(_ context.Context, token string) (readmodel.Application, error) {
	if err := q.read(); err != nil {
		return readmodel.Application{}, err
	}
	a, ok := q.apps[token]
	if !ok {
		return a, apperr.NotFound("application not found")
	}
	return a, nil
}

func (q *fakeQueries) Chat(_ context.Context, token string, number int64) (readmodel.Chat, error) {
	if err := q.read(); err != nil {
		return readmodel.Chat{}, err
	}
	c, ok := q.chats[fmt.Sprint(token, "/", number)]
	if !ok {
		return c, apperr.NotFound("chat not found")
	}
	return c, nil
}

func (q *fakeQueries) Message(_ context.Context, token string, chat, number int64) (readmodel.Message, error) {
	if err := q.read(); err != nil {
		return readmodel.Message{}, err
	}
	m, ok := q.messages[fmt.Sprint(token, "/", chat, "/", number)]
	if !ok {
		return m, apperr.NotFound("message not found")
	}
	if m.Deleted() {
		return m, apperr.MessageDeleted()
	}
	return m, nil
}

// Chats answers every chat of the application as one page, in number order.
func (q *fakeQueries) Chats(_ context.Context, token string, _ readmodel.Page) (readmodel.List[readmodel.Chat], error) {
	if err := q.read(); err != nil {
		return readmodel.List[readmodel.Chat]{}, err
	}
	a, ok := q.apps[token]
	if !ok {
		return readmodel.List[readmodel.Chat]{}, apperr.NotFound("application not found")
	}
	var chats []readmodel.Chat
	for n := int64(1); n <= a.ChatsCount; n++ {
		if c, ok := q.chats[fmt.Sprint(token, "/", n)]; ok {
			chats = append(chats, c)
		}
	}
	return readmodel.ListOf(a.ChatsCount, a.ChatsCount, chats...), nil
}

// ChatSpan answers an application's chats after s.After, or before
// s.Before, up to s.Limit.
func (q *fakeQueries) ChatSpan(ctx context.Context, token string, s readmodel.Span) (readmodel.Slice[readmodel.Chat], error) {
	all, err := q.Chats(ctx, token, readmodel.Page{})
	if err != nil {
		return readmodel.Slice[readmodel.Chat]{}, err
	}
	chats, _ := all.Collect(ctx)
	chats = slices.DeleteFunc(chats, func(c readmodel.Chat) bool {
		return c.Number <= s.After || s.Before > 0 && c.Number >= s.Before
	})
	if s.Before > 0 {
		chats = chats[max(len(chats)-int(s.Limit), 0):]
	} else {
		chats = chats[:min(len(chats), int(s.Limit))]
	}
	out := readmodel.Slice[readmodel.Chat]{List: readmodel.ListOf(all.Total, all.Last, chats...)}
	if len(chats) > 0 {
		out.From, out.To = chats[0].Number, chats[len(chats)-1].Number
	}
	return out, nil
}

func (q *fakeQueries) Messages(_ context.Context, token string, chat int64, _ readmodel.Page) (readmodel.List[readmodel.Message], error) {
	if err := q.read(); err != nil {
		return readmodel.List[readmodel.Message]{}, err
	}
	c, ok := q.chats[fmt.Sprint(token, "/", chat)]
	if !ok {
		return readmodel.List[readmodel.Message]{}, apperr.NotFound("chat not found")
	}
	// A deleted message keeps its place but is not counted, so the list
	// runs to the highest number held, as last_message_number does.
	last := c.MessagesCount
	for k, m := range q.messages {
		if strings.HasPrefix(k, fmt.Sprint(token, "/", chat, "/")) {
			last = max(last, m.Number)
		}
	}
	var messages []readmodel.Message
	for n := int64(1); n <= last; n++ {
		if m, ok := q.messages[fmt.Sprint(token, "/", chat, "/", n)]; ok {
			messages = append(messages, m)
		}
	}
	return readmodel.ListOf(c.MessagesCount, last, messages...), nil
}

// fakeSearch records what it was asked and finds total results.
type fakeSearch struct {
	mu    sync.Mutex
	total int64
	asked []string // "token/chat/q/page/per_page"
}

func (s *fakeSearch) Search(_ context.Context, token string, chat int64, q string, p readmodel.Page) (readmodel.List[readmodel.Message], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, fmt.Sprint(token, "/", chat, "/", q, "/", p.Number, "/", p.PerPage))
	return readmodel.List[readmodel.Message]{Total: s.total, Last: s.total}, nil
}

// Changes answers no changes for a chat it holds.
func (q *fakeQueries) Changes(_ context.Context, token string, chat int64, _ readmodel.Span) (readmodel.Changes, error) {
	if err := q.read(); err != nil {
		return readmodel.Changes{}, err
	}
	c, ok := q.chats[fmt.Sprint(token, "/", chat)]
	if !ok {
		return readmodel.Changes{}, apperr.NotFound("chat not found")
	}
	return readmodel.ChangesOf(c.MessagesCount), nil
}
