package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
)

// notText are strings in JSON bodies that encoding/json would decode to
// U+FFFD without a word: bytes that are not UTF-8, and escaped surrogates
// without their pair.
var notText = []struct{ what, raw string }{
	{"a lone 0xff", "a\xffb"},
	{"an overlong encoding", "a\xc0\xafb"},
	{"an encoded surrogate", "a\xed\xa0\x80b"},
	{"a truncated sequence", "ab\xc3"},
	{"a character past U+10FFFF", "\xf4\x90\x80\x80"},
	{"an escaped high surrogate alone", `a\ud800b`},
	{"an escaped low surrogate alone", `\udc00`},
	{"an escaped high surrogate before a letter", `\ud800\u0041`},
	{"two escaped high surrogates", `\ud83d\ud83d`},
}

// TestBodiesAreTakenAsSentOrRefused: every route that takes a body, the
// seed's included, refuses text that is not UTF-8 and a field given twice
// with 400 invalid_json naming the field, and runs no command.
func TestBodiesAreTakenAsSentOrRefused(t *testing.T) {
	t.Parallel()
	type request struct{ method, path, body, field string }
	var bad []request
	routes := append(commandRoutes, struct{ method, path, body string }{"GET", "/chats/1", `{"app_token":"` + apiToken + `"}`})
	for _, r := range routes {
		for _, field := range []string{"name", "body", "app_token"} {
			at := strings.Index(r.body, `"`+field+`":"`)
			if at < 0 {
				continue
			}
			at += len(field) + 4
			for _, s := range notText {
				bad = append(bad, request{r.method, r.path, r.body[:at] + s.raw + r.body[at:], field})
			}
			// The last would win: a field given twice, also in another case
			// or escaped.
			for _, twice := range []string{`"` + field + `":"x",`, `"` + strings.ToUpper(field) + `":"x",`, fmt.Sprintf(`"\u%04x%s":"x",`, field[0], field[1:])} {
				bad = append(bad, request{r.method, r.path, "{" + twice + r.body[1:], field})
			}
		}
	}
	// Within a field the route does not read, too: any key an object gives
	// twice, and text that is not UTF-8, name the field that holds them.
	messages := "/applications/" + apiToken + "/chats/1/messages"
	bad = append(bad,
		request{"POST", messages, `{"body":"hi","meta":{"k":1,"K":2}}`, "meta"},
		request{"POST", messages, `{"body":"hi","meta":[{"t":"a` + "\xff" + `b"}]}`, "meta"},
	)
	for _, r := range bad {
		a := newTestAPI(false)
		w := a.call(r.method, r.path, r.body)
		if w.Code != http.StatusBadRequest || errorCode(w) != "invalid_json" || !strings.Contains(w.Body.String(), `field \"`+r.field+`\"`) && !strings.Contains(w.Body.String(), `field \"`+strings.ToUpper(r.field)+`\"`) {
			t.Errorf("%s %s %q: %d %s; want 400 invalid_json naming %q", r.method, r.path, r.body, w.Code, strings.TrimSpace(w.Body.String()), r.field)
		}
		if got := a.cmd.received(); len(got) != 0 || a.reads.reads() != 0 {
			t.Errorf("%s %s %q: commands ran (%v) or the read side was asked", r.method, r.path, r.body, got)
		}
	}
}

// TestTextIsKeptAsSent: text that is UTF-8, however it is escaped, reaches
// the command as it was sent, U+FFFD included.
func TestTextIsKeptAsSent(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, want string }{
		{"plain", "plain"},
		{"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", "héllo € 😀"},
		{`\u00e9\u20ac\ud83d\ude00`, "é€😀"},
		{"\xef\xbf\xbd and \\ufffd", "\ufffd and \ufffd"},
		{`\"\\\/\b\f\n\r\t`, "\"\\/\b\f\n\r\t"},
	}
	for _, tc := range tests {
		a := newTestAPI(false)
		w := a.call("POST", "/applications/"+apiToken+"/chats/1/messages", `{"body":"`+tc.raw+`","other":[{"a":1,"b":[null,true]}, "\u00e9", 1.5e3]}`)
		got := a.cmd.received()
		if w.Code != http.StatusCreated || len(got) != 1 || got[0].(commands.CreateMessage).Body != tc.want {
			t.Errorf("%q: %d %s, commands %+v; want 201 with the body %q", tc.raw, w.Code, strings.TrimSpace(w.Body.String()), got, tc.want)
		}
	}
}

// correlations records the correlation id each message create carries.
type correlations struct {
	*fakeCommands
	ids []string
}

func (c *correlations) CreateMessage(ctx context.Context, cmd commands.CreateMessage) (commands.Message, error) {
	c.ids = append(c.ids, events.CorrelationID(ctx))
	return c.fakeCommands.CreateMessage(ctx, cmd)
}

// TestRequestIDIsKeptAsSentOrReplaced: a client's X-Request-Id is echoed
// and becomes the correlation id of the events as it was sent, or, when it
// could not be kept so (over 128 bytes, not UTF-8), a new one is made.
func TestRequestIDIsKeptAsSentOrReplaced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		kept bool
	}{
		{"01a21c0e-d3b3-7aa1-a92e-3142f0695558", true},
		{"<edit> & check", true},
		{"gęślą 🙂", true},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false},
		{"a\xffb", false},
		{"\xed\xa0\x80", false},
	}
	for _, tc := range tests {
		cmd := &correlations{fakeCommands: &fakeCommands{}}
		h := NewHandler(Deps{
			Commands: cmd, Queries: newFakeQueries(),
			Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), MaxInFlight: 1, MaxReadsInFlight: 1,
		})
		req := httptest.NewRequest("POST", "/applications/"+apiToken+"/chats/1/messages", strings.NewReader(`{"body":"hi"}`))
		req.Header.Set("X-Request-Id", tc.id)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		answered := w.Header().Get("X-Request-Id")
		if w.Code != http.StatusCreated || len(cmd.ids) != 1 || cmd.ids[0] != answered || answered == "" {
			t.Fatalf("X-Request-Id %q: %d, answered %q, correlation ids %q; want 201 with the answered id recorded", tc.id, w.Code, answered, cmd.ids)
		}
		if kept := answered == tc.id; kept != tc.kept {
			t.Errorf("X-Request-Id %q: answered and recorded %q; want it kept: %v", tc.id, answered, tc.kept)
		}
	}
}
