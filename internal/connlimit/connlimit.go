// Package connlimit bounds the connections one client holds open at once.
package connlimit

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// refuseWithin bounds what a refused connection costs: its answer is
// written and its client's remaining bytes drained within this.
const refuseWithin = time.Second

// Listener is a net.Listener that lets each client (remote IP address)
// hold at most Max connections. A connection past that is sent Refusal and
// closed at once, so that one client cannot take every connection a
// process can hold, while the others are served as before.
type Listener struct {
	net.Listener
	max     int
	refusal func() []byte
	refused atomic.Int64

	mu   sync.Mutex
	open map[string]int // by client
}

// PerClient wraps ln. refusal makes what a refused connection is sent (an
// HTTP answer, for an HTTP server); max 0 bounds nothing.
func PerClient(ln net.Listener, max int, refusal func() []byte) *Listener {
	return &Listener{Listener: ln, max: max, refusal: refusal, open: map[string]int{}}
}

// Refused is how many connections were refused so far.
func (l *Listener) Refused() int64 { return l.refused.Load() }

// Accept returns the next connection whose client holds fewer than the
// bound, and refuses the others on the way.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max <= 0 {
			return c, nil
		}
		client := clientOf(c.RemoteAddr())
		if l.take(client) {
			return &conn{Conn: c, release: func() { l.give(client) }}, nil
		}
		l.refused.Add(1)
		go refuse(c, l.refusal())
	}
}

func (l *Listener) take(client string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[client] >= l.max {
		return false
	}
	l.open[client]++
	return true
}

func (l *Listener) give(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[client]--; l.open[client] <= 0 {
		delete(l.open, client)
	}
}

// clientOf names a connection's client by its IP address: a client's
// connections come from many ports.
func clientOf(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// refuse sends c the refusal and closes it. Its write side is closed first
// and what the client had sent is drained for a moment, so that the close
// does not reset the connection before the client reads the refusal.
func refuse(c net.Conn, refusal []byte) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(refuseWithin))
	if _, err := c.Write(refusal); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// conn gives its client's place back when it is closed, once however often
// it is closed.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
