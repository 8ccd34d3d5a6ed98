package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
)

// streamsOpen reads chat_streams_open from a process's metrics.
func streamsOpen(t *testing.T, s *system) string {
	t.Helper()
	for line := range strings.SplitSeq(string(s.must(t, 200, "GET", "/metrics", nil).Body), "\n") {
		if v, ok := strings.CutPrefix(line, "chat_streams_open "); ok {
			return v
		}
	}
	return ""
}

// TestStreamsUnderTheServersBounds: a healthy stream outlives the server's
// read and write timeouts, which bound ordinary requests; a client that
// stops reading is disconnected once a write stalls past
// CHAT_STREAM_WRITE_TIMEOUT rather than buffered for; and a shutdown ends
// open streams at once, cleanly.
func TestStreamsUnderTheServersBounds(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	cfg.StreamWriteTimeout = 500 * time.Millisecond
	s := startTweaked(t, cfg, true, true, func(p *process) {
		p.timeouts.read, p.timeouts.write = time.Second, time.Second
	})
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "bounds"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	base := "/applications/" + token + "/chats/1/messages"
	s.eventually(t, "/applications/"+token+"/chats/1", nil)

	t.Run("a healthy stream outlives the server's timeouts", func(t *testing.T) {
		stream, stop := openStream(t, s, base+"/stream", "")
		defer stop()
		time.Sleep(2500 * time.Millisecond)
		s.must(t, 201, "POST", base, map[string]any{"body": "late"})
		if got := nextEvents(t, stream, 1, 5*time.Second); got[0].body != "late" {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("a client that stops reading is disconnected", func(t *testing.T) {
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		conn, err := d.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET %s/stream HTTP/1.1\r\nHost: x\r\n\r\n", base)
		if status, _ := bufio.NewReader(conn).ReadString('\n'); !strings.Contains(status, "200") {
			t.Fatalf("status line %q", status)
		}
		testenv.Eventually(t, 5*time.Second, "the stream counted open", func() bool { return streamsOpen(t, s) == "1" })
		big := strings.Repeat("x", 60<<10)
		testenv.Eventually(t, 30*time.Second, "the stalled stream closed", func() bool {
			for range 20 {
				s.must(t, 201, "POST", base, map[string]any{"body": big})
			}
			return streamsOpen(t, s) == "0"
		})
	})

	t.Run("shutdown ends streams at once", func(t *testing.T) {
		stream, _ := openStream(t, s, base+"/stream", "")
		began := time.Now()
		// The stream must end while the rest of the process still stops
		// (its workers finish their batches), not after.
		stopped := make(chan struct{})
		go func() { defer close(stopped); s.stop() }()
		for range stream {
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Fatalf("the stream ended %s after shutdown began", took)
		}
		<-stopped
	})
}
