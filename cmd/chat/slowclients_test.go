package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
)

// TestSlowClientsCostNoService opens several hundred connections that send
// a request's headers and then stall in its body, on every kind of route
// that reads one and on reads that take none, many times the process's
// slots: clients that send their requests keep getting 200 and 201 within
// their usual latency. Past CHAT_HTTP_MAX_CONNS_PER_CLIENT a client's next
// connection is answered 503 overloaded and closed.
func TestSlowClientsCostNoService(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	cfg.MaxInFlight, cfg.MaxReadsInFlight = 16, 16
	cfg.BodyTimeout = time.Minute // the stalled clients outlast the test
	const stalledPerRoute, workers = 60, 4
	const perClient = 5*stalledPerRoute + 3*workers + 8 // this test's clients are all 127.0.0.1
	cfg.MaxConnsPerClient = perClient
	s := start(t, cfg, true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "slow"}).object(t)["token"].(string)
	app := "/applications/" + token
	s.must(t, 201, "POST", app+"/chats", map[string]any{"name": "c"})
	s.eventually(t, app+"/chats/1", nil)

	addr := strings.TrimPrefix(s.URL, "http://")
	var stalled []net.Conn
	for _, r := range [][2]string{
		{"POST", app + "/chats/1/messages"},
		{"PATCH", app + "/chats/1"},
		{"POST", "/messages"},
		{"GET", "/chats/1"}, // the seed's, which reads the token from a body
		{"GET", app + "/chats/1/messages"},
	} {
		head := r[0] + " " + r[1] + " HTTP/1.1\r\nHost: chat\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{"
		stalled = append(stalled, dialAll(t, addr, stalledPerRoute, head)...)
	}
	time.Sleep(200 * time.Millisecond) // every stalled request is in

	slowest := serveAlongside(t, s, app, workers, len(stalled))
	t.Logf("%d stalled connections; the slowest of %d requests took %s", len(stalled), workers*30, slowest)
	// The stalled clients are still held, not answered.
	for _, c := range stalled[:5] {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if n, err := c.Read(make([]byte, 1)); n > 0 || !isTimeout(err) {
			t.Errorf("a stalled client was answered or cut off: %d bytes, %v", n, err)
		}
	}

	// Past its bound, a client's next connections are refused: as many new
	// ones as the bound, whatever else is open, are more than it.
	refused := refusals(t, dialAll(t, addr, perClient, ""))
	if refused == 0 || refused == perClient {
		t.Errorf("%d of %d more connections refused; want those past the bound", refused, perClient)
	}
	testenv.Eventually(t, 5*time.Second, "the refusals counted", func() bool {
		metrics := string(s.must(t, 200, "GET", "/metrics", nil).Body)
		return strings.Contains(metrics, fmt.Sprintf("chat_http_connections_refused_total %d\n", refused))
	})
}

// dialAll opens n connections to addr and sends head on each; they are
// closed when the test ends.
func dialAll(t *testing.T, addr string, n int, head string) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
	}
	return conns
}

// serveAlongside sends reads and commands from a few clients at a time, as
// usual, and checks each is served within its usual latency; it returns
// the slowest.
func serveAlongside(t *testing.T, s *system, app string, workers, stalled int) time.Duration {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: workers}}
	defer c.CloseIdleConnections()
	var (
		mu      sync.Mutex
		slowest time.Duration
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range 10 {
				for _, r := range [][3]string{
					{"GET", app + "/chats/1", ""},
					{"GET", app + "/chats/1/messages", ""},
					{"POST", app + "/chats/1/messages", fmt.Sprintf(`{"body":"m %d %d"}`, w, i)},
				} {
					req, _ := http.NewRequest(r[0], s.URL+r[1], strings.NewReader(r[2]))
					req.Header.Set("Content-Type", "application/json")
					began := time.Now()
					resp, err := c.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					took := time.Since(began)
					mu.Lock()
					slowest = max(slowest, took)
					mu.Unlock()
					if resp.StatusCode >= 300 || took > 2*time.Second {
						t.Errorf("%s %s beside %d stalled clients: %d %s after %s", r[0], r[1], stalled, resp.StatusCode, b, took)
					}
				}
			}
		})
	}
	wg.Wait()
	return slowest
}

// refusals counts the connections that were answered 503 overloaded, with
// Retry-After, without having sent anything.
func refusals(t *testing.T, conns []net.Conn) int {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	refused := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			continue // held: a place was free
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"overloaded"`) {
			t.Errorf("a connection past the bound: %d %s", resp.StatusCode, b)
		}
		refused++
	}
	return refused
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
