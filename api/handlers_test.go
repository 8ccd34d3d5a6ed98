package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/readmodel"
)

// These tests hold the HTTP mapping of commands and reads to its contract
// (README, api/openapi.yaml) with in-memory commands and read side
// (fakes_test.go): statuses, error codes, headers and bodies, and what
// reaches the command handlers.

const apiToken = "dddddddddddddddddddddddddd" // an application the read side holds

// readTime is when the read side's resources were created.
var readTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type testAPI struct {
	cmd    *fakeCommands
	reads  *fakeQueries
	search *fakeSearch
	h      http.Handler
}

// newTestAPI serves an application with chat 1 holding message 1; with
// search false, no search engine is configured.
func newTestAPI(search bool) *testAPI {
	a := &testAPI{cmd: &fakeCommands{}, reads: newFakeQueries()}
	a.reads.apps[apiToken] = readmodel.Application{Token: apiToken, Name: "acme", ChatsCount: 1, CreatedAt: readTime, UpdatedAt: readTime}
	a.reads.chats[apiToken+"/1"] = readmodel.Chat{Number: 1, Name: "general", MessagesCount: 1, CreatedAt: readTime, UpdatedAt: readTime}
	a.reads.messages[apiToken+"/1/1"] = readmodel.Message{ChatNumber: 1, Number: 1, Body: "hello", CreatedAt: readTime, UpdatedAt: readTime}
	d := Deps{
		Commands: a.cmd, Queries: a.reads,
		Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), MaxInFlight: 8, MaxReadsInFlight: 8,
	}
	if search {
		a.search = &fakeSearch{total: 3}
		d.Search = a.search
	}
	a.h = NewHandler(d)
	return a
}

// call serves one request; header holds name, value pairs.
func (a *testAPI) call(method, path, body string, header ...string) *httptest.ResponseRecorder {
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, req)
	return w
}

func errorCode(w *httptest.ResponseRecorder) string {
	var b errorBody
	_ = json.Unmarshal(w.Body.Bytes(), &b)
	return b.Error.Code
}

// commandRoutes is a request to every command route, canonical and seed.
var commandRoutes = []struct{ method, path, body string }{
	{"POST", "/applications", `{"name":"acme"}`},
	{"PATCH", "/applications/" + apiToken, `{"name":"acme 2"}`},
	{"POST", "/applications/" + apiToken + "/chats", `{"name":"general"}`},
	{"PATCH", "/applications/" + apiToken + "/chats/1", `{"name":"random"}`},
	{"POST", "/applications/" + apiToken + "/chats/1/messages", `{"body":"hi"}`},
	{"PATCH", "/applications/" + apiToken + "/chats/1/messages/1", `{"body":"hi again"}`},
	{"POST", "/chats", `{"name":"general","app_token":"` + apiToken + `"}`},
	{"PATCH", "/chats/1", `{"name":"random","app_token":"` + apiToken + `"}`},
	{"POST", "/messages", `{"body":"hi","chat_number":1,"app_token":"` + apiToken + `"}`},
	{"PATCH", "/messages/1", `{"body":"hi again","chat_number":"1","app_token":"` + apiToken + `"}`},
	{"DELETE", "/applications/" + apiToken + "/chats/1/messages/1", ""},
	{"DELETE", "/messages/1", `{"chat_number":1,"app_token":"` + apiToken + `"}`},
}

// TestDeletesAnswer204: a delete answers 204 with no body, on either route,
// and hands the command what the request named; the seed's route takes
// app_token and chat_number from the query string or the body.
func TestDeletesAnswer204(t *testing.T) {
	t.Parallel()
	want := commands.DeleteMessage{Token: apiToken, ChatNumber: 2, Number: 5}
	for _, tc := range []struct{ path, body string }{
		{"/applications/" + apiToken + "/chats/2/messages/5", ""},
		{"/messages/5?app_token=" + apiToken + "&chat_number=2", ""},
		{"/messages/5", `{"app_token":"` + apiToken + `","chat_number":"2"}`},
		{"/messages/5?chat_number=2", `{"app_token":"` + apiToken + `","chat_number":9}`},
	} {
		a := newTestAPI(false)
		w := a.call("DELETE", tc.path, tc.body)
		if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Errorf("DELETE %s %s: %d %s", tc.path, tc.body, w.Code, w.Body)
		}
		if got := a.cmd.received(); len(got) != 1 || got[0] != want {
			t.Errorf("DELETE %s %s: the command handlers got %+v, want %+v", tc.path, tc.body, got, want)
		}
	}
}

// TestDeletedMessagesRead: a deleted message reads as 404 message_deleted
// by both routes, while lists keep its number's place with deleted_at and
// no body, so that page p still holds numbers p*per_page-per_page+1 to
// p*per_page; X-Total-Count counts the messages not deleted.
func TestDeletedMessagesRead(t *testing.T) {
	t.Parallel()
	const at = `"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"`
	deletedAt := readTime.Add(time.Hour)
	tests := []struct {
		what, path string
		status     int
		answer     string // the body, or the error's code
		header     map[string]string
	}{
		{"the message", "/applications/" + apiToken + "/chats/1/messages/2", 404, "message_deleted", nil},
		{"the seed's message", "/messages/" + apiToken + "/1/2", 404, "message_deleted", nil},
		{"a list", "/applications/" + apiToken + "/chats/1/messages", 200,
			`[{"number":1,"chat_number":1,"body":"hello",` + at + `},` +
				`{"number":2,"chat_number":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T01:00:00Z","deleted_at":"2026-01-01T01:00:00Z"},` +
				`{"number":3,"chat_number":1,"body":"later",` + at + `}]`,
			map[string]string{"X-Total-Count": "2"}},
		{"the seed's list", "/chats/" + apiToken + "/1/messages?per_page=1", 200, "", map[string]string{
			"X-Total-Count": "2",
			"Link":          `</chats/` + apiToken + `/1/messages?page=1&per_page=1>; rel="first", </chats/` + apiToken + `/1/messages?page=3&per_page=1>; rel="last", </chats/` + apiToken + `/1/messages?page=2&per_page=1>; rel="next"`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(false)
			a.reads.chats[apiToken+"/1"] = readmodel.Chat{Number: 1, Name: "general", MessagesCount: 2, CreatedAt: readTime, UpdatedAt: readTime}
			a.reads.messages[apiToken+"/1/2"] = readmodel.Message{ChatNumber: 1, Number: 2, CreatedAt: readTime, UpdatedAt: deletedAt, DeletedAt: deletedAt}
			a.reads.messages[apiToken+"/1/3"] = readmodel.Message{ChatNumber: 1, Number: 3, Body: "later", CreatedAt: readTime, UpdatedAt: readTime}
			w := a.call("GET", tc.path, "")
			got := strings.TrimSpace(w.Body.String())
			if w.Code >= 400 {
				got = errorCode(w)
			}
			if w.Code != tc.status || tc.answer != "" && got != tc.answer {
				t.Errorf("answered %d %s; want %d %s", w.Code, got, tc.status, tc.answer)
			}
			for name, want := range tc.header {
				if w.Header().Get(name) != want {
					t.Errorf("%s: %q, want %q", name, w.Header().Get(name), want)
				}
			}
		})
	}
}

// TestCreatesAnswer201WithLocation: a create answers 201, a Location that
// reads the new resource back, and the resource as it will read; each route
// hands the command what the request said.
func TestCreatesAnswer201WithLocation(t *testing.T) {
	t.Parallel()
	const at = `"created_at":"2026-03-04T05:06:07.891011Z","updated_at":"2026-03-04T05:06:07.891011Z"`
	tests := []struct {
		path, body string
		location   string
		answer     string
		cmd        any
	}{
		{"/applications", `{"name":"acme"}`, "/applications/" + fakeToken,
			`{"token":"` + fakeToken + `","name":"acme","chats_count":0,` + at + `}`,
			commands.CreateApplication{Name: "acme"}},
		{"/applications/" + apiToken + "/chats", `{"name":"general"}`, "/applications/" + apiToken + "/chats/7",
			`{"number":7,"name":"general","messages_count":0,` + at + `}`,
			commands.CreateChat{Token: apiToken, Name: "general", HasName: true}},
		{"/applications/" + apiToken + "/chats", "", "/applications/" + apiToken + "/chats/7",
			`{"number":7,"name":"","messages_count":0,` + at + `}`,
			commands.CreateChat{Token: apiToken}},
		{"/applications/" + apiToken + "/chats/2/messages", `{"body":"<hi> & bye"}`, "/applications/" + apiToken + "/chats/2/messages/7",
			`{"number":7,"chat_number":2,"body":"<hi> & bye",` + at + `}`,
			commands.CreateMessage{Token: apiToken, ChatNumber: 2, Body: "<hi> & bye"}},
		{"/chats", `{"name":"general","app_token":"` + apiToken + `"}`, "/applications/" + apiToken + "/chats/7",
			`{"number":7,"name":"general","messages_count":0,` + at + `}`,
			commands.CreateChat{Token: apiToken, Name: "general", HasName: true}},
		{"/chats?app_token=" + apiToken, `{"name":"general"}`, "/applications/" + apiToken + "/chats/7",
			`{"number":7,"name":"general","messages_count":0,` + at + `}`,
			commands.CreateChat{Token: apiToken, Name: "general", HasName: true}},
		{"/messages", `{"body":"hi","chat_number":"2","app_token":"` + apiToken + `"}`, "/applications/" + apiToken + "/chats/2/messages/7",
			`{"number":7,"chat_number":2,"body":"hi",` + at + `}`,
			commands.CreateMessage{Token: apiToken, ChatNumber: 2, Body: "hi"}},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.body, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(false)
			w := a.call("POST", tc.path, tc.body)
			if w.Code != http.StatusCreated || w.Header().Get("Location") != tc.location {
				t.Errorf("answered %d with Location %q; want 201 with %q", w.Code, w.Header().Get("Location"), tc.location)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tc.answer {
				t.Errorf("answered\n%s\nwant\n%s", got, tc.answer)
			}
			if got := a.cmd.received(); len(got) != 1 || got[0] != tc.cmd {
				t.Errorf("the command handlers got %+v, want %+v", got, tc.cmd)
			}
		})
	}
}

// TestUpdatesAnswerTheResource: an update answers 200 with the resource:
// what the command set, and the rest (counts, created_at) from the read
// side; while the read side has not seen the resource yet, what the command
// knows.
func TestUpdatesAnswerTheResource(t *testing.T) {
	t.Parallel()
	const was = `"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-03-04T05:06:07.891011Z"`
	const now = `"created_at":"2026-03-04T05:06:07.891011Z","updated_at":"2026-03-04T05:06:07.891011Z"`
	const unread = "eeeeeeeeeeeeeeeeeeeeeeeeee"
	tests := []struct {
		path, body, answer string
		cmd                any
	}{
		{"/applications/" + apiToken, `{"name":"acme 2"}`,
			`{"token":"` + apiToken + `","name":"acme 2","chats_count":1,` + was + `}`,
			commands.RenameApplication{Token: apiToken, Name: "acme 2"}},
		{"/applications/" + unread, `{"name":"acme 2"}`,
			`{"token":"` + unread + `","name":"acme 2","chats_count":0,` + now + `}`,
			commands.RenameApplication{Token: unread, Name: "acme 2"}},
		{"/applications/" + apiToken + "/chats/1", `{"name":"random"}`,
			`{"number":1,"name":"random","messages_count":1,` + was + `}`,
			commands.RenameChat{Token: apiToken, Number: 1, Name: "random"}},
		{"/chats/2", `{"name":"random","app_token":"` + apiToken + `"}`,
			`{"number":2,"name":"random","messages_count":0,` + now + `}`,
			commands.RenameChat{Token: apiToken, Number: 2, Name: "random"}},
		{"/applications/" + apiToken + "/chats/1/messages/1", `{"body":"hello again"}`,
			`{"number":1,"chat_number":1,"body":"hello again",` + was + `}`,
			commands.EditMessage{Token: apiToken, ChatNumber: 1, Number: 1, Body: "hello again"}},
		{"/messages/3", `{"body":"hi","chat_number":1,"app_token":"` + apiToken + `"}`,
			`{"number":3,"chat_number":1,"body":"hi",` + now + `}`,
			commands.EditMessage{Token: apiToken, ChatNumber: 1, Number: 3, Body: "hi"}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(false)
			w := a.call("PATCH", tc.path, tc.body)
			if w.Code != http.StatusOK || w.Header().Get("Location") != "" {
				t.Errorf("answered %d with Location %q; want 200 without", w.Code, w.Header().Get("Location"))
			}
			if got := strings.TrimSpace(w.Body.String()); got != tc.answer {
				t.Errorf("answered\n%s\nwant\n%s", got, tc.answer)
			}
			if got := a.cmd.received(); len(got) != 1 || got[0] != tc.cmd {
				t.Errorf("the command handlers got %+v, want %+v", got, tc.cmd)
			}
		})
	}
}

// TestCommandErrorsMapToStatuses: every command route answers a command's
// failure with its status, its stable code and, where the client should
// come back, Retry-After; never a Location, and never the cause of an
// internal error.
func TestCommandErrorsMapToStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		what       string
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{"an unknown target", apperr.NotFound("chat not found"), 404, "not_found", ""},
		{"a deleted message", apperr.MessageDeleted(), 404, "message_deleted", ""},
		{"invalid input", apperr.Validation("name must not be empty"), 422, "validation_failed", ""},
		{"the broker down", apperr.Unavailable(apperr.DepBroker, nil, "the event broker is unreachable; retry later"), 503, "unavailable", "1"},
		{"Redis down", apperr.Unavailable(apperr.DepRedis, errors.New("dial tcp: refused"), "the numbering service is unavailable; retry later"), 503, "unavailable", "1"},
		{"a key reused", apperr.KeyReused("another request"), 422, "idempotency_key_reused", ""},
		{"a key in flight", apperr.InFlight(time.Second, "still being processed"), 409, "idempotency_key_in_flight", "1"},
		{"too many keys", apperr.KeyLimit(89*time.Second+time.Millisecond, "too many keys"), 429, "idempotency_key_limit", "90"},
		{"a bug", errors.New("secret cause"), 500, "internal", ""},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(false)
			a.cmd.err = tc.err
			for _, r := range commandRoutes {
				w := a.call(r.method, r.path, r.body)
				if w.Code != tc.status || errorCode(w) != tc.code || w.Header().Get("Retry-After") != tc.retryAfter {
					t.Errorf("%s %s: %d %s, Retry-After %q; want %d %s, Retry-After %q", r.method, r.path, w.Code, errorCode(w), w.Header().Get("Retry-After"), tc.status, tc.code, tc.retryAfter)
				}
				if w.Header().Get("Location") != "" || strings.Contains(w.Body.String(), "secret") {
					t.Errorf("%s %s: Location %q, body %s", r.method, r.path, w.Header().Get("Location"), w.Body)
				}
			}
			if got := len(a.cmd.received()); got != len(commandRoutes) {
				t.Errorf("%d commands reached the handlers, want one per route (%d)", got, len(commandRoutes))
			}
		})
	}
}

// idempotencyKey returns the Idempotency-Key a command carries.
func idempotencyKey(cmd any) string {
	switch c := cmd.(type) {
	case commands.CreateApplication:
		return c.IdempotencyKey
	case commands.RenameApplication:
		return c.IdempotencyKey
	case commands.CreateChat:
		return c.IdempotencyKey
	case commands.RenameChat:
		return c.IdempotencyKey
	case commands.CreateMessage:
		return c.IdempotencyKey
	case commands.EditMessage:
		return c.IdempotencyKey
	case commands.DeleteMessage:
		return c.IdempotencyKey
	}
	return "?"
}

// TestIdempotencyKeyHeader: every command route hands the command the
// Idempotency-Key header's key (bare or quoted); a malformed key is 400
// and no command runs.
func TestIdempotencyKeyHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		what   string
		header []string
		key    string // "" with no code: no key
		code   string // the 400's code, for a malformed key
	}{
		{"no header", nil, "", ""},
		{"a key", []string{"Idempotency-Key", "9f1c2a6e-k"}, "9f1c2a6e-k", ""},
		{"a quoted key", []string{"Idempotency-Key", `"9f1c2a6e-k"`}, "9f1c2a6e-k", ""},
		{"an empty key", []string{"Idempotency-Key", ""}, "", "invalid_idempotency_key"},
		{"a key with a space", []string{"Idempotency-Key", "a b"}, "", "invalid_idempotency_key"},
		{"a key of 256 characters", []string{"Idempotency-Key", strings.Repeat("k", 256)}, "", "invalid_idempotency_key"},
		{"two keys", []string{"Idempotency-Key", "a", "Idempotency-Key", "b"}, "", "invalid_idempotency_key"},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			for _, r := range commandRoutes {
				a := newTestAPI(false)
				w := a.call(r.method, r.path, r.body, tc.header...)
				got := a.cmd.received()
				if tc.code != "" {
					if w.Code != 400 || errorCode(w) != tc.code || len(got) != 0 {
						t.Errorf("%s %s: %d %s with %d commands run; want 400 %s and none", r.method, r.path, w.Code, errorCode(w), len(got), tc.code)
					}
					continue
				}
				if w.Code >= 300 || len(got) != 1 || idempotencyKey(got[0]) != tc.key {
					t.Errorf("%s %s: %d, commands %+v; want the key %q", r.method, r.path, w.Code, got, tc.key)
				}
			}
		})
	}
}

// TestBadRequestsRunNoCommand: a request refused for its body or path is
// answered without running a command.
func TestBadRequestsRunNoCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		what, method, path, body, contentType string
		status                                int
		code                                  string
	}{
		{"malformed JSON", "POST", "/applications", `{"name":`, "application/json", 400, "invalid_json"},
		{"a number for a name", "POST", "/applications", `{"name":5}`, "application/json", 400, "invalid_json"},
		{"two JSON values", "POST", "/applications/" + apiToken + "/chats", `{} {}`, "application/json", 400, "invalid_json"},
		{"a stray brace after the object", "POST", "/applications", `{"name":"acme"}}`, "application/json", 400, "invalid_json"},
		{"a stray bracket after the object", "PATCH", "/chats/1", `{"name":"x","app_token":"` + apiToken + `"}]`, "application/json", 400, "invalid_json"},
		{"null where a body is optional", "POST", "/applications/" + apiToken + "/chats", `null`, "application/json", 400, "invalid_json"},
		{"an array", "POST", "/applications", `[{"name":"acme"}]`, "application/json", 400, "invalid_json"},
		{"no body where one is needed", "POST", "/applications/" + apiToken + "/chats/1/messages", "", "", 400, "invalid_json"},
		{"a body that is not JSON", "POST", "/applications", `name=acme`, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
		{"a body over 1 MiB", "POST", "/applications/" + apiToken + "/chats/1/messages", `{"body":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, "application/json", 413, "payload_too_large"},
		{"a chat number that is not one", "POST", "/applications/" + apiToken + "/chats/x/messages", `{"body":"hi"}`, "application/json", 404, "not_found"},
		{"a message number below 1", "PATCH", "/applications/" + apiToken + "/chats/1/messages/0", `{"body":"hi"}`, "application/json", 404, "not_found"},
		{"the seed's create without app_token", "POST", "/chats", `{"name":"general"}`, "application/json", 422, "validation_failed"},
		{"the seed's message without chat_number", "POST", "/messages", `{"body":"hi","app_token":"` + apiToken + `"}`, "application/json", 422, "validation_failed"},
		{"the seed's chat_number not a number", "POST", "/messages", `{"body":"hi","chat_number":"one","app_token":"` + apiToken + `"}`, "application/json", 400, "invalid_json"},
		{"the seed's chat_number 0", "PATCH", "/messages/1", `{"body":"hi","chat_number":0,"app_token":"` + apiToken + `"}`, "application/json", 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(false)
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			w := httptest.NewRecorder()
			a.h.ServeHTTP(w, req)
			if w.Code != tc.status || errorCode(w) != tc.code {
				t.Errorf("answered %d %s; want %d %s", w.Code, errorCode(w), tc.status, tc.code)
			}
			if got := a.cmd.received(); len(got) != 0 {
				t.Errorf("commands ran: %+v", got)
			}
		})
	}
}

// TestReadsAnswerTheReadSide: reads answer what the read side holds, 404
// for what it does not (a malformed token without asking it), and 503 with
// Retry-After while it is down; lists and searches carry their counts and
// links, and search without an engine is 503.
func TestReadsAnswerTheReadSide(t *testing.T) {
	t.Parallel()
	const at = `"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"`
	down := apperr.Unavailable(apperr.DepDatabase, errors.New("dial tcp: refused"), "the database is unavailable; retry later")
	tests := []struct {
		what, path string
		down       error
		noSearch   bool
		status     int
		answer     string // the body, or the error's code
		header     map[string]string
	}{
		{"an application", "/applications/" + apiToken, nil, false, 200,
			`{"token":"` + apiToken + `","name":"acme","chats_count":1,` + at + `}`, nil},
		{"a chat", "/applications/" + apiToken + "/chats/1", nil, false, 200,
			`{"number":1,"name":"general","messages_count":1,` + at + `}`, nil},
		{"the seed's chat", "/chats/1?app_token=" + apiToken, nil, false, 200,
			`{"number":1,"name":"general","messages_count":1,` + at + `}`, nil},
		{"a message", "/applications/" + apiToken + "/chats/1/messages/1", nil, false, 200,
			`{"number":1,"chat_number":1,"body":"hello",` + at + `}`, nil},
		{"the seed's message", "/messages/" + apiToken + "/1/1", nil, false, 200,
			`{"number":1,"chat_number":1,"body":"hello",` + at + `}`, nil},
		{"an unknown chat", "/applications/" + apiToken + "/chats/2", nil, false, 404, "not_found", nil},
		{"an unknown message", "/applications/" + apiToken + "/chats/1/messages/2", nil, false, 404, "not_found", nil},
		{"the database down", "/applications/" + apiToken, down, false, 503, "unavailable", map[string]string{"Retry-After": "1"}},
		{"a list with the database down", "/applications/" + apiToken + "/chats", down, false, 503, "unavailable", map[string]string{"Retry-After": "1"}},
		{"a list of chats", "/applications/" + apiToken + "/chats?per_page=1", nil, false, 200,
			`[{"number":1,"name":"general","messages_count":1,` + at + `}]`, map[string]string{
				"X-Total-Count": "1",
				"Link":          `</applications/` + apiToken + `/chats?page=1&per_page=1>; rel="first", </applications/` + apiToken + `/chats?page=1&per_page=1>; rel="last"`,
			}},
		{"a list of messages", "/applications/" + apiToken + "/chats/1/messages", nil, false, 200,
			`[{"number":1,"chat_number":1,"body":"hello",` + at + `}]`, map[string]string{"X-Total-Count": "1"}},
		{"the seed's list of messages", "/chats/" + apiToken + "/1/messages", nil, false, 200,
			`[{"number":1,"chat_number":1,"body":"hello",` + at + `}]`, map[string]string{"X-Total-Count": "1"}},
		{"a page size over 1000", "/applications/" + apiToken + "/chats/1/messages?per_page=1001", nil, false, 422, "validation_failed", nil},
		{"a search", "/applications/" + apiToken + "/chats/1/messages/search?q=hel&per_page=2", nil, false, 200, "[]", map[string]string{
			"X-Total-Count": "3",
			"Link":          `</applications/` + apiToken + `/chats/1/messages/search?page=1&per_page=2&q=hel>; rel="first", </applications/` + apiToken + `/chats/1/messages/search?page=2&per_page=2&q=hel>; rel="last", </applications/` + apiToken + `/chats/1/messages/search?page=2&per_page=2&q=hel>; rel="next"`,
		}},
		{"a search without an engine", "/applications/" + apiToken + "/chats/1/messages/search?q=hel", nil, true, 503, "unavailable", map[string]string{"Retry-After": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(!tc.noSearch)
			a.reads.err = tc.down
			w := a.call("GET", tc.path, "")
			got := strings.TrimSpace(w.Body.String())
			if w.Code >= 400 {
				got = errorCode(w)
			}
			if w.Code != tc.status || got != tc.answer {
				t.Errorf("answered %d %s; want %d %s", w.Code, got, tc.status, tc.answer)
			}
			for name, want := range tc.header {
				if w.Header().Get(name) != want {
					t.Errorf("%s: %q, want %q", name, w.Header().Get(name), want)
				}
			}
		})
	}

	// A token this system could not have issued names nothing: 404 without
	// a query.
	a := newTestAPI(true)
	for _, path := range []string{"/applications/NOT-A-TOKEN", "/applications/" + strings.ToUpper(apiToken) + "/chats", "/messages/x/1/1", "/chats/1?app_token=x"} {
		if w := a.call("GET", path, ""); w.Code != 404 || errorCode(w) != "not_found" {
			t.Errorf("GET %s: %d %s, want 404 not_found", path, w.Code, errorCode(w))
		}
	}
	if a.reads.reads() != 0 {
		t.Errorf("malformed tokens were looked up %d times", a.reads.reads())
	}
}

// TestSearchAsksForWhatTheClientSent: the canonical and the seed's search
// hand the engine the chat, the terms (unescaped from the seed's path) and
// the page; a malformed token asks nothing.
func TestSearchAsksForWhatTheClientSent(t *testing.T) {
	t.Parallel()
	a := newTestAPI(true)
	for _, path := range []string{
		"/applications/" + apiToken + "/chats/1/messages/search?q=hel+wor&page=2&per_page=5",
		"/chats/" + apiToken + "/1/search/hel%20wor?page=2&per_page=5",
		"/chats/" + apiToken + "/1/search/a%2Fb%3F",
		"/chats/NOT-A-TOKEN/1/search/hel",
	} {
		if w := a.call("GET", path, ""); w.Code != 200 && w.Code != 404 {
			t.Errorf("GET %s: %d %s", path, w.Code, w.Body)
		}
	}
	want := []string{apiToken + "/1/hel wor/2/5", apiToken + "/1/hel wor/2/5", apiToken + "/1/a/b?/1/50"}
	if strings.Join(a.search.asked, "|") != strings.Join(want, "|") {
		t.Errorf("the engine was asked %q, want %q", a.search.asked, want)
	}
	if a.reads.reads() != 0 {
		t.Errorf("a search read the read tables %d times itself", a.reads.reads())
	}
}
