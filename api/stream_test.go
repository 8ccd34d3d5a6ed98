package api

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestStreamsAreBounded: past the bound on streams a stream is refused with
// 503 before it starts, and ending one frees its slot; shutting down ends
// every stream cleanly.
func TestStreamsAreBounded(t *testing.T) {
	t.Parallel()
	a := newTestAPI(false)
	stopping := make(chan struct{})
	h := NewHandler(Deps{
		Commands: a.cmd, Queries: a.reads, Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler),
		MaxInFlight: 8, MaxReadsInFlight: 8, Streams: StreamConfig{Max: 1, Stopping: stopping},
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	path := srv.URL + "/applications/" + apiToken + "/chats/1/messages/stream"
	open := func(t *testing.T) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, cancel
	}
	first, cancel := open(t)
	defer cancel()
	if first.StatusCode != http.StatusOK || first.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" || first.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("first stream: %d %v", first.StatusCode, first.Header)
	}
	line, _ := bufio.NewReader(first.Body).ReadString('\n')
	if line != "event: ready\n" {
		t.Fatalf("the stream starts with %q", line)
	}
	second, cancel2 := open(t)
	second.Body.Close()
	cancel2()
	if second.StatusCode != http.StatusServiceUnavailable || second.Header.Get("Retry-After") == "" {
		t.Fatalf("a stream past the bound: %d, Retry-After %q", second.StatusCode, second.Header.Get("Retry-After"))
	}
	close(stopping)
	done := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(first.Body).ReadString(0)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || err.Error() != "EOF" {
			t.Errorf("the stream ended with %v, want a clean EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutting down did not end the stream")
	}
}

// TestBadCursorsBeforeTheStream: a malformed cursor, wherever it comes from,
// is 400 invalid_cursor with the usual body, and an unknown chat is 404,
// both before any event.
func TestBadCursorsBeforeTheStream(t *testing.T) {
	t.Parallel()
	a := newTestAPI(false)
	base := "/applications/" + apiToken + "/chats/1/messages"
	tests := []struct {
		name, path, lastEventID string
		status                  int
		code                    string
	}{
		{"letters after", base + "/stream?after=abc", "", 400, "invalid_cursor"},
		{"negative after", base + "/stream?after=-3", "", 400, "invalid_cursor"},
		{"leading zero", base + "/stream?after=01", "", 400, "invalid_cursor"},
		{"too long", base + "/stream?after=99999999999999999999", "", 400, "invalid_cursor"},
		{"bad Last-Event-ID", base + "/stream", "x1", 400, "invalid_cursor"},
		{"unknown chat", "/applications/" + apiToken + "/chats/9/messages/stream", "", 404, "not_found"},
		{"list with a bad after", base + "?after=x", "", 400, "invalid_cursor"},
		{"list with after and before", base + "?after=1&before=5", "", 400, "invalid_cursor"},
		{"list with before 0", base + "?before=0", "", 400, "invalid_cursor"},
		{"wait without a cursor", base + "?wait=5s", "", 400, "invalid_cursor"},
		{"wait too long", base + "?after=0&wait=61s", "", 400, "invalid_cursor"},
		{"wait with before", base + "?before=4&wait=1s", "", 400, "invalid_cursor"},
		{"chats with a bad after", "/applications/" + apiToken + "/chats?after=1x", "", 400, "invalid_cursor"},
		{"chats with a page and a cursor", "/applications/" + apiToken + "/chats?before=3&page=1", "", 400, "invalid_cursor"},
		{"chats that would wait", "/applications/" + apiToken + "/chats?after=1&wait=5s", "", 400, "invalid_cursor"},
		{"chats of an unknown application", "/applications/x/chats?after=0", "", 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var header []string
			if tt.lastEventID != "" {
				header = []string{"Last-Event-ID", tt.lastEventID}
			}
			w := a.call(http.MethodGet, tt.path, "", header...)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), `"code":"`+tt.code+`"`) {
				t.Errorf("%d %s; want %d %s", w.Code, w.Body.String(), tt.status, tt.code)
			}
		})
	}
}
