package connlimit

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// serve accepts on a loopback listener bounded to max per client; a
// connection is held until its client closes it, as an HTTP server holds
// it.
func serve(t *testing.T, max int) *Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := PerClient(raw, max, func() []byte { return []byte("refused\n") })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects and reports what the server sent within a moment: "" while
// the connection is held open without a word.
func dial(t *testing.T, ln net.Listener) (net.Conn, string) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	b, _ := io.ReadAll(c)
	return c, string(b)
}

// TestPerClient: a client holds at most the bound; one more connection is
// sent the refusal and closed, and a place given back (a connection
// closed) can be taken again. A bound of 0 bounds nothing.
func TestPerClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		max, dials, refused int
	}{
		{max: 3, dials: 5, refused: 2},
		{max: 1, dials: 1, refused: 0},
		{max: 0, dials: 20, refused: 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("max ", tc.max), func(t *testing.T) {
			t.Parallel()
			perClient(t, tc.max, tc.dials, tc.refused)
		})
	}
}

// perClient dials as many times as told, holding the connections, and
// checks how many were refused and that a place given back is taken again.
func perClient(t *testing.T, max, dials, wantRefused int) {
	t.Helper()
	ln := serve(t, max)
	var held []net.Conn
	refused := 0
	for range dials {
		c, got := dial(t, ln)
		switch got {
		case "":
			held = append(held, c)
		case "refused\n":
			refused++
		default:
			t.Errorf("a connection was sent %q", got)
		}
	}
	if refused != wantRefused || ln.Refused() != int64(wantRefused) {
		t.Errorf("%d dials: %d refused (counted %d), want %d", dials, refused, ln.Refused(), wantRefused)
	}
	if max == 0 || len(held) == 0 {
		return
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	// The server gives the place back once it closes its side; until then
	// the place is still taken.
	for {
		if _, got := dial(t, ln); got == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Error("a place given back is not taken again")
			return
		}
	}
}
