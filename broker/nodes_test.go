package broker

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseNodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		urls  string
		addrs []string
		uri   string
		ok    bool
	}{
		{"amqp://g:p@a:5672/", []string{"a:5672"}, "amqp://g:p@a/", true},
		{"amqp://g:p@a:5672/v, amqp://g:p@b:5673/v", []string{"a:5672", "b:5673"}, "amqp://g:p@a/v", true},
		{"amqps://g:p@a/v,amqps://g:p@b/v", []string{"a:5671", "b:5671"}, "amqp://g:p@a:5671/v", true},
		{"amqp://g:p@a:5672/v,amqp://g:p@b:5672/w", nil, "", false},
		{"amqp://g:p@a:5672/,amqp://h:p@b:5672/", nil, "", false},
		{"amqp://g:p@a:5672/,", nil, "", false},
	}
	for _, tc := range tests {
		n, err := ParseNodes(tc.urls)
		if (err == nil) != tc.ok {
			t.Errorf("ParseNodes(%q): %v, want ok=%v", tc.urls, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if got := n.Addrs(); len(got) != len(tc.addrs) || got[0] != tc.addrs[0] || got[len(got)-1] != tc.addrs[len(got)-1] {
			t.Errorf("ParseNodes(%q).Addrs() = %v, want %v", tc.urls, got, tc.addrs)
		}
		if n.URI() != tc.uri {
			t.Errorf("ParseNodes(%q).URI() = %q, want %q", tc.urls, n.URI(), tc.uri)
		}
		if vhost := tc.uri[strings.LastIndex(tc.uri, "/")+1:]; n.User() != "g" || n.Vhost() != vhost && !(vhost == "" && n.Vhost() == "/") {
			t.Errorf("ParseNodes(%q): user %q, vhost %q; want g, %q", tc.urls, n.User(), n.Vhost(), vhost)
		}
	}
}

// TestNodesRotate: a dial skips a node that refuses, and the dial after a
// success (a reconnect) starts with the next node.
func TestNodesRotate(t *testing.T) {
	t.Parallel()
	listen := func() (net.Listener, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln, ln.Addr().String()
	}
	_, a := listen()
	_, b := listen()
	closedLn, closed := listen()
	closedLn.Close()
	n, err := ParseNodes("amqp://g:p@" + closed + "/,amqp://g:p@" + a + "/,amqp://g:p@" + b + "/")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{a, b, a} {
		conn, err := n.dial("tcp", time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if got := conn.RemoteAddr().String(); got != want {
			t.Errorf("dial %d reached %s, want %s", i, got, want)
		}
		conn.Close()
	}
}
