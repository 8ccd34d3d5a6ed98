package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/internal/testenv"
)

// TestReadConcurrencyLimit holds MySQL's answers to one API process so that
// its reads wait: with CHAT_MAX_READS_IN_FLIGHT 2, two reads wait and are
// served once MySQL answers again, every other read is refused at once with
// 503 overloaded and Retry-After, and commands, bounded apart, go on being
// served.
func TestReadConcurrencyLimit(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	dsn, err := mysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	mysqlGate := newGate(t, dsn.Addr)
	dsn.Addr = mysqlGate.Addr()
	apiCfg := cfg
	apiCfg.MySQLDSN = dsn.FormatDSN()
	apiCfg.MaxReadsInFlight = 2
	api := start(t, apiCfg, true, false)
	start(t, cfg, false, true)

	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "busy"}).object(t)["token"].(string)
	chat := "/applications/" + token + "/chats/1"
	api.must(t, 201, "POST", "/applications/"+token+"/chats", map[string]any{"name": "c"})
	api.eventually(t, chat, nil)

	mysqlGate.Hold()
	defer mysqlGate.Release() // a read still waiting would hold up the process's shutdown
	const n = 10
	var released time.Time
	answers, began := sendAtOnce(t, n, func() *http.Request {
		req, _ := http.NewRequest("GET", api.URL+chat+"/messages?per_page=1000", nil)
		return req
	}, func() {
		// Commands are not reads: they are served while the reads wait.
		time.Sleep(500 * time.Millisecond)
		api.must(t, 201, "POST", chat+"/messages", map[string]any{"body": "while reads wait"})
		released = time.Now()
		mysqlGate.Release()
	})

	overloaded, served := 0, 0
	for _, a := range answers {
		switch {
		case a.status == 503 && a.code == "overloaded":
			overloaded++
			if a.retryAfter == "" {
				t.Error("503 overloaded without Retry-After")
			}
			if a.took > released.Sub(began) {
				t.Errorf("503 overloaded after %s; it should come at once, not once MySQL answers", a.took)
			}
		case a.status == 200:
			served++
			if a.took < released.Sub(began) {
				t.Errorf("a read was served after %s, while MySQL was held", a.took)
			}
		default:
			t.Errorf("answer %+v, want 200 or 503 overloaded", a)
		}
	}
	t.Logf("answers: %+v", answers)
	if overloaded != n-apiCfg.MaxReadsInFlight || served != apiCfg.MaxReadsInFlight {
		t.Errorf("%d overloaded and %d served, want %d and %d", overloaded, served, n-apiCfg.MaxReadsInFlight, apiCfg.MaxReadsInFlight)
	}
	// Once the slots are free again, reads are served again.
	api.eventually(t, chat+"/messages/1", nil)
	if r := api.call(t, http.MethodGet, chat, nil); r.Status != 200 {
		t.Errorf("a read after the wait: %d %s", r.Status, r.Body)
	}
}

// fill returns head followed by unit repeated, then '<', to exactly size bytes.
func fill(head, unit string, size int) string {
	var b strings.Builder
	b.WriteString(head)
	for b.Len()+len(unit) <= size {
		b.WriteString(unit)
	}
	for b.Len() < size {
		b.WriteByte('<')
	}
	return b.String()
}

// TestLargeBodiesReadBackExactly posts messages of the largest body allowed,
// of '<' (which JSON used to escape to six bytes) and of multibyte text, and
// reads every one back exactly: by GET, in one list page of 1,000 (read a
// slice at a time) and through search. The event store holds them without
// HTML escapes, and answers carry none.
func TestLargeBodiesReadBackExactly(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	s := start(t, cfg, true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "<large> & \"bodies\""}).object(t)["token"].(string)
	chat := "/applications/" + token + "/chats/1"
	s.must(t, 201, "POST", "/applications/"+token+"/chats", map[string]any{"name": "<b>big</b>"})
	s.eventually(t, chat, nil)

	const size = commands.MaxBodyBytes
	var bodies []string       // by number - 1
	var angled, wordy []int64 // what the searches below find
	for i := 1; i <= 36; i++ {
		var b string
		switch {
		case i%3 != 0: // 24 of '<'
			b = fill(fmt.Sprintf("needle%02d ", i), "<", size)
			angled = append(angled, int64(i))
		case i%9 == 0: // 4 of words in several scripts
			b = fill(fmt.Sprintf("%02d ", i), "Zażółć gęślą jaźń, 日本語のテキスト; Ελληνικά <&> ", size)
			wordy = append(wordy, int64(i))
		default: // 8 of multibyte symbols with few words
			b = fill(fmt.Sprintf("gęślą %02d 🙂 ", i), "«—…“”€→✓<&>»\u00a0", size)
			wordy = append(wordy, int64(i))
		}
		if len(b) != size {
			t.Fatalf("body %d has %d bytes", i, len(b))
		}
		bodies = append(bodies, b)
		r := s.must(t, 201, "POST", chat+"/messages", map[string]any{"body": b})
		if num(r.object(t)["number"]) != int64(i) {
			t.Fatalf("message %d got number %v", i, r.object(t)["number"])
		}
	}
	// An edit replaces a large body with another; its request id, which
	// becomes the event's correlation id, is stored as it is too.
	bodies[0] = fill("needle01 edited ", "&", size)
	edit, err := json.Marshal(map[string]any{"body": bodies[0]})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("PATCH", s.URL+chat+"/messages/1", bytes.NewReader(edit))
	if err != nil {
		t.Fatal(err)
	}
	const requestID = "<edit> & check"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", requestID)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PATCH message 1: %d", resp.StatusCode)
	}

	// noEscapes fails when an answer carries HTML escapes.
	noEscapes := func(what string, r response) {
		t.Helper()
		for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`} {
			if bytes.Contains(r.Body, []byte(esc)) {
				t.Errorf("%s: the answer holds %s", what, esc)
			}
		}
	}
	app := s.must(t, 200, "GET", "/applications/"+token, nil)
	noEscapes("GET the application", app)
	if name := app.object(t)["name"]; name != `<large> & "bodies"` {
		t.Errorf("application name %q", name)
	}
	s.eventually(t, chat+"/messages/1", func(r response) bool { return r.object(t)["body"] == bodies[0] })
	for i, want := range bodies {
		path := fmt.Sprintf("%s/messages/%d", chat, i+1)
		r := s.eventually(t, path, nil)
		noEscapes("GET "+path, r)
		if got := r.object(t)["body"]; got != want {
			t.Errorf("GET %s: the body differs from the one posted (%d bytes, want %d)", path, len(fmt.Sprint(got)), len(want))
		}
		if len(r.Body) > size+1024 {
			t.Errorf("GET %s: %d bytes for a %d-byte body", path, len(r.Body), size)
		}
	}

	// readsBack checks a page's messages against the bodies posted.
	readsBack := func(what string, r response, want []int64) {
		t.Helper()
		noEscapes(what, r)
		var page []struct {
			Number int64  `json:"number"`
			Body   string `json:"body"`
		}
		r.json(t, &page)
		var got []int64
		for _, m := range page {
			got = append(got, m.Number)
			if m.Number < 1 || int(m.Number) > len(bodies) || m.Body != bodies[m.Number-1] {
				t.Errorf("%s: message %d differs from the one posted", what, m.Number)
			}
		}
		if sorted(got) != sorted(want) {
			t.Errorf("%s: numbers %v, want %v", what, got, want)
		}
	}
	var all []int64
	for i := range bodies {
		all = append(all, int64(i+1))
	}
	for _, path := range []string{chat + "/messages?per_page=1000", "/chats/" + token + "/1/messages?per_page=1000"} {
		r := s.must(t, 200, "GET", path, nil)
		if r.Header.Get("X-Total-Count") != fmt.Sprint(len(bodies)) {
			t.Errorf("GET %s: X-Total-Count %q, want %d", path, r.Header.Get("X-Total-Count"), len(bodies))
		}
		readsBack("GET "+path, r, all)
	}
	for _, search := range []struct {
		q    string
		want []int64
	}{{"needle", angled}, {"gesla", wordy}} {
		path := chat + "/messages/search?per_page=1000&q=" + search.q
		eventuallyFinds(t, s, path, search.want...)
		readsBack("GET "+path, s.must(t, 200, "GET", path, nil), search.want)
	}

	// The event store holds the text as it is: no escapes, no growth.
	db := testenv.DB(t, cfg)
	rows, err := db.Query("SELECT position, payload, metadata FROM " + catalog.New(cfg.Namespace).Events() + " ORDER BY position")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored, correlated := 0, 0
	for rows.Next() {
		var (
			pos           int64
			payload, meta []byte
		)
		if err := rows.Scan(&pos, &payload, &meta); err != nil {
			t.Fatal(err)
		}
		stored++
		for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`} {
			if bytes.Contains(payload, []byte(esc)) || bytes.Contains(meta, []byte(esc)) {
				t.Errorf("event %d is stored with %s: %.120s…", pos, esc, payload)
			}
		}
		if bytes.Contains(meta, []byte(requestID)) {
			correlated++
		}
		if len(payload) > size+512 {
			t.Errorf("event %d: a payload of %d bytes for a body of at most %d", pos, len(payload), size)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := 2 + len(bodies) + 1; stored != want {
		t.Errorf("%d events stored, want %d", stored, want)
	}
	if correlated != 1 {
		t.Errorf("%d events stored with the correlation id %q as it is, want 1", correlated, requestID)
	}
}
