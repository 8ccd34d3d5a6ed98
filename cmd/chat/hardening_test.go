package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
)

// TestSlowClientsAreCutOff: a client that sends its headers, or its body,
// slower than the server's timeouts has its request ended by the server
// instead of holding a connection (and a goroutine) for as long as it likes.
func TestSlowClientsAreCutOff(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	const readHeader, read = 500 * time.Millisecond, 1500 * time.Millisecond
	if cfg.BodyTimeout != 5*time.Second {
		t.Errorf("CHAT_HTTP_BODY_TIMEOUT is %s by default, want 5s", cfg.BodyTimeout)
	}
	cfg.BodyTimeout = read
	s := startTweaked(t, cfg, true, false, func(p *process) {
		if p.timeouts != defaultHTTPTimeouts || defaultHTTPTimeouts.readHeader != 5*time.Second {
			t.Errorf("a process's HTTP timeouts are %+v, want the defaults %+v with ReadHeaderTimeout 5s", p.timeouts, defaultHTTPTimeouts)
		}
		p.timeouts.readHeader, p.timeouts.read = readHeader, read
	})
	addr := strings.TrimPrefix(s.URL, "http://")
	s.must(t, 200, "GET", "/healthz", nil) // a prompt client is served

	// trickle opens a connection, writes head at once, then one byte of
	// slow every 100 ms, and returns what the server answered (if anything)
	// and how long until it closed the connection or answered.
	trickle := func(head, slow string) (string, time.Duration) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		began := time.Now()
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		answered := make(chan string, 1)
		go func() {
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, _ := io.ReadAll(conn) // until the server closes it
			answered <- string(b)
		}()
		for i := 0; ; i++ {
			select {
			case b := <-answered:
				return b, time.Since(began)
			case <-time.After(100 * time.Millisecond):
			}
			if i < len(slow) {
				_, _ = conn.Write([]byte{slow[i]}) // fails once the server has closed; the reader sees it
			}
		}
	}

	// Headers that would take 5 s: the connection is closed after
	// ReadHeaderTimeout, without an answer.
	slowHeaders := strings.Repeat("X-Slow: y\r\n", 5)
	got, took := trickle("GET /healthz HTTP/1.1\r\nHost: chat\r\n", slowHeaders[:50])
	t.Logf("slow headers: closed after %s, answer %q", took.Round(time.Millisecond), got)
	if took < readHeader-100*time.Millisecond || took > readHeader+2*time.Second {
		t.Errorf("slow headers: the connection was closed after %s, want about %s", took, readHeader)
	}
	if strings.Contains(got, " 200 ") {
		t.Errorf("slow headers were served: %q", got)
	}

	// A body that would take 10 s: the request ends after the body timeout
	// with 408, and creates nothing.
	body := `{"name": "` + strings.Repeat("x", 86) + `"}`
	got, took = trickle("POST /applications HTTP/1.1\r\nHost: chat\r\nContent-Type: application/json\r\nContent-Length: "+fmt.Sprint(len(body))+"\r\n\r\n", body)
	t.Logf("slow body: ended after %s, answer %q", took.Round(time.Millisecond), firstLine(got))
	if took > read+2*time.Second {
		t.Errorf("slow body: the request ended after %s, want about %s", took, read)
	}
	if !strings.Contains(firstLine(got), " 408 ") || !strings.Contains(got, "request_timeout") {
		t.Errorf("a slow body was answered %q, want 408 request_timeout", got)
	}
}

// paramPattern is a path parameter with a pattern of its own.
var paramPattern = regexp.MustCompile(`\{([^}:]+):[^}]*\}`)

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// commandRoutes are the API's POST and PATCH routes, read from its router,
// with path parameters filled in with an existing application, chat 1 and
// message 1.
func commandRoutes(t *testing.T, handler http.Handler, token string) [][3]string {
	t.Helper()
	routes, isRouter := handler.(chi.Routes)
	if !isRouter {
		t.Fatalf("the API handler is a %T, not a chi router", handler)
	}
	fill := strings.NewReplacer("{token}", token, "{chat}", "1", "{message}", "1")
	var out [][3]string
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = paramPattern.ReplaceAllString(route, "{$1}") // {message:[0-9]+} is {message}
		if method == http.MethodPost || method == http.MethodPatch {
			path := fill.Replace(strings.TrimSuffix(route, "/"))
			if strings.Contains(path, "{") {
				return fmt.Errorf("route %s has a parameter this test does not know", route)
			}
			out = append(out, [3]string{method, path, strings.TrimSuffix(route, "/")})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Canonical: 3 creates and 3 renames/edits; seed: 2 creates, 2 edits.
	if len(out) < 10 {
		t.Fatalf("found %d command routes, want at least 10: %v", len(out), out)
	}
	return out
}

// TestCommandBodiesAreChecked sends every command route a body that is not
// declared JSON (415) and a chunked body over 1 MiB without Content-Length
// (413), and checks that neither changed anything.
func TestCommandBodiesAreChecked(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	var handler http.Handler
	s := startTweaked(t, cfg, true, true, func(p *process) { handler = p.handler })
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "acme"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", map[string]any{"name": "general"})
	s.must(t, 201, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": "first"})
	const stored = 3

	send := func(t *testing.T, method, path, contentType string, body io.Reader, chunked bool) response {
		t.Helper()
		req, err := http.NewRequest(method, s.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		if chunked {
			req.ContentLength = -1
			req.TransferEncoding = []string{"chunked"}
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return response{resp.StatusCode, resp.Header, readAll(t, resp)}
	}
	// A JSON body each route would accept, but for its media type.
	valid := fmt.Sprintf(`{"name": "x", "body": "x", "app_token": %q, "chat_number": 1}`, token)
	for _, route := range commandRoutes(t, handler, token) {
		method, path := route[0], route[1]
		t.Run(method+" "+route[2], func(t *testing.T) {
			for _, ct := range []string{"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
				r := send(t, method, path, ct, strings.NewReader(valid), false)
				if r.Status != 415 || r.errorCode(t) != "unsupported_media_type" {
					t.Errorf("Content-Type %s: %d %s, want 415 unsupported_media_type", ct, r.Status, r.Body)
				}
			}
			// io.MultiReader hides the length: the body goes chunked.
			big := io.MultiReader(strings.NewReader(`{"name": "`), strings.NewReader(strings.Repeat("x", 1<<20)), strings.NewReader(`"}`))
			r := send(t, method, path, "application/json", big, true)
			if r.Status != 413 || r.errorCode(t) != "payload_too_large" {
				t.Errorf("chunked body over 1 MiB: %d %s, want 413 payload_too_large", r.Status, r.Body)
			}
		})
	}
	// A chunked body under the limit is served like any other, and the
	// refused requests used up no number and stored no event.
	r := send(t, "POST", "/applications/"+token+"/chats", "application/json", io.MultiReader(strings.NewReader(`{"name": "chunked"}`)), true)
	if r.Status != 201 || r.object(t)["number"] != float64(2) {
		t.Errorf("a small chunked body: %d %s, want 201 and chat 2", r.Status, r.Body)
	}
	if n := s.must(t, 201, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": "second"}).object(t)["number"]; n != float64(2) {
		t.Errorf("next message number %v, want 2", n)
	}
	db := testenv.DB(t, cfg)
	testenv.Eventually(t, 10*time.Second, "the events of the accepted requests, and only them, stored", func() bool {
		var n int
		err := db.QueryRow("SELECT COUNT(*) FROM " + catalog.New(cfg.Namespace).Events()).Scan(&n)
		if n > stored+2 {
			t.Fatalf("%d events stored, want %d: a refused request published one", n, stored+2)
		}
		return err == nil && n == stored+2
	})
}

// TestErrorsRevealNothing takes MySQL away from an API process: reads answer
// 503 with a message of our own, never the driver's error text, an address
// or the DSN, while commands go on working.
func TestErrorsRevealNothing(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	dsn, err := mysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, dsn.Addr)
	dsn.Addr = proxy.Addr()
	apiCfg := cfg
	apiCfg.MySQLDSN = dsn.FormatDSN()
	api := start(t, apiCfg, true, false)
	start(t, cfg, false, true)

	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "secretive"}).object(t)["token"].(string)
	app := "/applications/" + token
	api.must(t, 201, "POST", app+"/chats", map[string]any{"name": "c"})
	api.must(t, 201, "POST", app+"/chats/1/messages", map[string]any{"body": "hello world"})
	api.eventually(t, app+"/chats/1/messages/1", nil)

	proxy.Down()
	forbidden := []string{"dial", "tcp", "eof", "invalid connection", "bad connection", "driver", "sql", "error 1", "goroutine", ".go:", "panic",
		strings.ToLower(proxy.Addr()), strings.ToLower(dsn.DBName), strings.ToLower(cfg.Namespace), strings.ToLower(apiCfg.MySQLDSN)}
	for _, path := range []string{
		app, app + "/chats", app + "/chats/1", app + "/chats/1/messages", app + "/chats/1/messages/1",
		app + "/chats/1/messages/search?q=hel",
		"/chats/1?app_token=" + token, "/chats/" + token + "/1/messages", "/chats/" + token + "/1/search/hel",
		"/messages/" + token + "/1/1",
	} {
		r := api.call(t, "GET", path, nil)
		if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.errorCode(t) != "unavailable" {
			t.Errorf("GET %s with MySQL down: %d (Retry-After %q) %s, want 503 unavailable with Retry-After", path, r.Status, r.Header.Get("Retry-After"), r.Body)
		}
		body := strings.ToLower(string(r.Body))
		for _, f := range forbidden {
			if strings.Contains(body, f) {
				t.Errorf("GET %s with MySQL down shows %q to the client: %s", path, f, r.Body)
			}
		}
	}
	// The command side never reads MySQL.
	api.must(t, 201, "POST", app+"/chats/1/messages", map[string]any{"body": "still accepted"})
	proxy.Up()
	api.eventually(t, app+"/chats/1/messages/2", nil)
}

// TestCommandConcurrencyLimit holds the broker's answers to one API process
// so that its publishes wait for their confirms: with CHAT_MAX_IN_FLIGHT 2,
// two commands wait (and get 503 unavailable at the publish timeout), every
// other command is refused at once with 503 overloaded and Retry-After, and
// reads go on being served.
func TestCommandConcurrencyLimit(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	apiCfg, amqpGate := gatedBroker(t, cfg)
	apiCfg.MaxInFlight = 2
	apiCfg.PublishTimeout = 3 * time.Second
	api := start(t, apiCfg, true, false)
	start(t, cfg, false, true)

	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "busy"}).object(t)["token"].(string)
	chat := "/applications/" + token + "/chats/1"
	api.must(t, 201, "POST", "/applications/"+token+"/chats", map[string]any{"name": "c"})
	api.eventually(t, chat, nil)

	amqpGate.Hold()
	defer amqpGate.Release() // a publish still waiting would hold up the process's shutdown
	const n = 10
	answers, _ := sendAtOnce(t, n, func() *http.Request {
		req, _ := http.NewRequest("POST", api.URL+chat+"/messages", strings.NewReader(`{"body": "one of many"}`))
		req.Header.Set("Content-Type", "application/json")
		return req
	}, func() {
		// Reads are not commands: they are served while the commands wait.
		time.Sleep(300 * time.Millisecond)
		readBegan := time.Now()
		if r := api.call(t, "GET", chat, nil); r.Status != 200 {
			t.Errorf("a read while commands wait: %d %s", r.Status, r.Body)
		} else if took := time.Since(readBegan); took > time.Second {
			t.Errorf("a read while commands wait took %s", took)
		}
	})

	overloaded, waited := 0, 0
	for _, a := range answers {
		switch {
		case a.status == 503 && a.code == "overloaded":
			overloaded++
			if a.retryAfter == "" {
				t.Error("503 overloaded without Retry-After")
			}
			if a.took > time.Second {
				t.Errorf("503 overloaded after %s; it should come at once, not after the publish timeout (%s)", a.took, apiCfg.PublishTimeout)
			}
		case a.status == 503 && a.code == "unavailable":
			waited++
			if a.took < apiCfg.PublishTimeout-500*time.Millisecond {
				t.Errorf("503 unavailable after %s, before the publish timeout (%s)", a.took, apiCfg.PublishTimeout)
			}
		default:
			t.Errorf("answer %+v, want 503 overloaded or unavailable", a)
		}
	}
	t.Logf("answers: %+v", answers)
	if overloaded != n-apiCfg.MaxInFlight || waited != apiCfg.MaxInFlight {
		t.Errorf("%d overloaded and %d waited for the broker, want %d and %d", overloaded, waited, n-apiCfg.MaxInFlight, apiCfg.MaxInFlight)
	}

	// Once the broker answers again, commands are served again.
	amqpGate.Release()
	testenv.Eventually(t, 20*time.Second, "commands served again", func() bool {
		return api.call(t, "POST", chat+"/messages", map[string]any{"body": "after"}).Status == 201
	})
}

// timedAnswer is one answer of several requests sent at once, with the time
// it took from when they were all sent.
type timedAnswer struct {
	status     int
	code       string
	retryAfter string
	took       time.Duration
}

// sendAtOnce sends n requests made by newRequest at once, calls during
// while they are in flight, and returns their answers once all have come,
// with the time they were sent.
func sendAtOnce(t *testing.T, n int, newRequest func() *http.Request, during func()) ([]timedAnswer, time.Time) {
	t.Helper()
	answers := make([]timedAnswer, n)
	var wg sync.WaitGroup
	began := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Do(newRequest())
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			r := response{resp.StatusCode, resp.Header, readAll(t, resp)}
			a := timedAnswer{status: r.Status, retryAfter: r.Header.Get("Retry-After"), took: time.Since(began)}
			if r.Status >= 400 {
				a.code = r.errorCode(t)
			}
			answers[i] = a
		}()
	}
	during()
	wg.Wait()
	return answers, began
}

// gatedBroker returns cfg with its broker traffic passing through a gate,
// for a process whose publishes a test holds.
func gatedBroker(t *testing.T, cfg config.Config) (config.Config, *gate) {
	t.Helper()
	amqpURL, err := url.Parse(cfg.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(t, amqpURL.Host)
	amqpURL.Host = g.Addr()
	cfg.AMQPURL = amqpURL.String()
	return cfg, g
}

// gate is a TCP proxy that can hold traffic without closing connections: to
// the client, the server has stopped answering. It counts the connections it
// was asked for.
type gate struct {
	target string
	ln     net.Listener
	dials  atomic.Int64

	mu    sync.Mutex
	cond  *sync.Cond
	held  bool
	conns map[net.Conn]bool
}

func newGate(t *testing.T, target string) *gate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{target: target, ln: ln, conns: map[net.Conn]bool{}}
	g.cond = sync.NewCond(&g.mu)
	go g.accept()
	t.Cleanup(func() {
		g.Release()
		ln.Close()
		g.mu.Lock()
		for c := range g.conns {
			c.Close()
		}
		g.mu.Unlock()
	})
	return g
}

// Addr is the gate's host:port.
func (g *gate) Addr() string { return g.ln.Addr().String() }

// Dials is how many connections were made through the gate.
func (g *gate) Dials() int64 { return g.dials.Load() }

// Hold stops passing bytes either way; connections stay open.
func (g *gate) Hold() {
	g.mu.Lock()
	g.held = true
	g.mu.Unlock()
}

// Release passes bytes again, those held first.
func (g *gate) Release() {
	g.mu.Lock()
	g.held = false
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *gate) accept() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.dials.Add(1)
		s, err := net.Dial("tcp", g.target)
		if err != nil {
			c.Close()
			continue
		}
		g.mu.Lock()
		g.conns[c], g.conns[s] = true, true
		g.mu.Unlock()
		go g.pipe(s, c)
		go g.pipe(c, s)
	}
}

func (g *gate) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			g.mu.Lock()
			for g.held {
				g.cond.Wait()
			}
			g.mu.Unlock()
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
