package api

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// slowAPI serves the test API on a loopback server with few slots and the
// given body timeout.
func slowAPI(t *testing.T, bodyTimeout time.Duration) (*testAPI, *httptest.Server) {
	t.Helper()
	a := newTestAPI(false)
	a.h = NewHandler(Deps{
		Commands: a.cmd, Queries: a.reads,
		Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler),
		MaxInFlight: 4, MaxReadsInFlight: 4, BodyTimeout: bodyTimeout,
	})
	srv := httptest.NewServer(a.h)
	t.Cleanup(srv.Close)
	return a, srv
}

// stall opens a connection to srv and sends head and then only part, no
// more; the connection is closed when the test ends.
func stall(t *testing.T, srv *httptest.Server, head, part string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head+part); err != nil {
		t.Fatal(err)
	}
	return conn
}

// stalledHead is the head of a request to path whose body says it has 64
// bytes.
func stalledHead(method, path string) string {
	return method + " " + path + " HTTP/1.1\r\nHost: chat\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n"
}

// answer reads the answer on conn, within wait.
func answer(t *testing.T, conn net.Conn, wait time.Duration) (*http.Response, string, error) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestStalledClientsHoldNoSlot: clients that send a request's headers and
// then stall in its body, many more of them than there are slots, on every
// kind of route, leave every slot to the clients that send their requests:
// those are served at once. A route that takes no body answers without
// waiting for one.
func TestStalledClientsHoldNoSlot(t *testing.T) {
	t.Parallel()
	a, srv := slowAPI(t, time.Minute)
	app := "/applications/" + apiToken
	stalled := []struct{ method, path string }{
		{"POST", app + "/chats/1/messages"},
		{"PATCH", app + "/chats/1"},
		{"POST", "/messages"},
		{"GET", "/chats/1"}, // the seed's, which reads app_token from a body
	}
	for _, s := range stalled {
		for range 3 * 4 { // three times the slots
			stall(t, srv, stalledHead(s.method, s.path), "{")
		}
	}
	// Routes that take no body answer at once; the rest of a body they did
	// not read is not waited for.
	for _, path := range []string{app, app + "/chats/1/messages", "/chats/1?app_token=" + apiToken} {
		conn := stall(t, srv, stalledHead("GET", path), "{")
		resp, _, err := answer(t, conn, 2*time.Second)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with a stalled body: %v %v; want 200 at once", path, resp, err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the stalled requests are in

	client := srv.Client()
	var wg sync.WaitGroup
	for range 8 {
		for _, r := range []struct{ method, path, body string }{
			{"GET", app + "/chats/1", ""},
			{"GET", app + "/chats/1/messages", ""},
			{"POST", app + "/chats/1/messages", `{"body":"hi"}`},
			{"POST", "/chats", `{"app_token":"` + apiToken + `"}`},
		} {
			wg.Go(func() {
				req, _ := http.NewRequest(r.method, srv.URL+r.path, strings.NewReader(r.body))
				began := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 || time.Since(began) > time.Second {
					t.Errorf("%s %s beside stalled clients: %d %s after %s", r.method, r.path, resp.StatusCode, b, time.Since(began))
				}
			})
		}
	}
	wg.Wait()
	if n := len(a.cmd.received()); n != 16 {
		t.Errorf("%d commands ran, want the 16 sent whole", n)
	}
}

// TestBodiesAreWaitedForBriefly: a body that does not arrive within the
// body timeout is answered 408 request_timeout and the connection closed,
// with no command run; a body that says it is over 1 MiB is answered 413
// at once, before any of it is sent.
func TestBodiesAreWaitedForBriefly(t *testing.T) {
	t.Parallel()
	const bodyTimeout = 300 * time.Millisecond
	a, srv := slowAPI(t, bodyTimeout)
	tests := []struct {
		what, head, part string
		status           int
		code             string
		within           time.Duration
	}{
		{"a stalled command", stalledHead("POST", "/applications/"+apiToken+"/chats"), `{"na`, 408, "request_timeout", bodyTimeout + time.Second},
		{"a stalled seed read", stalledHead("GET", "/chats/1"), "", 408, "request_timeout", bodyTimeout + time.Second},
		{"a chunked body that stalls", "POST /applications HTTP/1.1\r\nHost: chat\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\n{\"nam", 408, "request_timeout", bodyTimeout + time.Second},
		{"a body over 1 MiB", fmt.Sprintf("POST /applications HTTP/1.1\r\nHost: chat\r\nContent-Length: %d\r\n\r\n", MaxBodyBytes+1), "", 413, "payload_too_large", bodyTimeout / 2},
		{"a body over 1 MiB, expecting 100-continue", fmt.Sprintf("POST /messages HTTP/1.1\r\nHost: chat\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", 5*MaxBodyBytes), "", 413, "payload_too_large", bodyTimeout / 2},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			resp, body, err := answer(t, stall(t, srv, tc.head, tc.part), 5*time.Second)
			took := time.Since(began)
			if err != nil {
				t.Fatalf("no answer after %s: %v", took, err)
			}
			if resp.StatusCode != tc.status || !strings.Contains(body, `"`+tc.code+`"`) || took > tc.within {
				t.Errorf("%d %s after %s; want %d %s within %s", resp.StatusCode, strings.TrimSpace(body), took, tc.status, tc.code, tc.within)
			}
			if !resp.Close {
				t.Error("the connection is kept open, with what is left of the body unread")
			}
		})
	}
	t.Cleanup(func() {
		if got := a.cmd.received(); len(got) != 0 {
			t.Errorf("commands ran: %+v", got)
		}
	})
}
