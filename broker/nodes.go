package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Nodes are the nodes of one RabbitMQ cluster, from a comma-separated list
// of AMQP URLs. They share the user, password and vhost (a cluster's users
// and vhosts are the cluster's), so a connection can be made to any of them
// with the first one's credentials.
//
// Dialing tries the nodes in turn from the one after the last that
// answered: a process connects to the first that answers and, when its
// connection goes, reconnects to another one. Watermill's connection
// wrapper takes a single URI, so the rotation is a dial hook (Config.Dial),
// which it calls on every reconnect.
type Nodes struct {
	uri   string // the first URL, as the handshake's credentials and vhost
	addrs []string
	tls   bool
	vhost string
	user  string

	mu   sync.Mutex
	next int
}

// ParseNodes parses a comma-separated list of AMQP URLs of one cluster.
func ParseNodes(urls string) (*Nodes, error) {
	var (
		n     Nodes
		first amqp.URI
	)
	for i, raw := range strings.Split(urls, ",") {
		raw = strings.TrimSpace(raw)
		u, err := amqp.ParseURI(raw)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		if i == 0 {
			first = u
			n.tls = u.Scheme == "amqps"
			n.vhost, n.user = u.Vhost, u.Username
			// amqps is spoken by our dialer, so that each node's certificate
			// is checked against its own host name; the handshake then runs
			// over plain amqp on the TLS connection.
			u.Scheme = "amqp"
			n.uri = u.String()
		} else if u.Scheme != first.Scheme || u.Username != first.Username || u.Password != first.Password || u.Vhost != first.Vhost {
			return nil, fmt.Errorf("node %d: every node of the list needs the same scheme, user, password and vhost as the first", i+1)
		}
		n.addrs = append(n.addrs, net.JoinHostPort(u.Host, strconv.Itoa(u.Port)))
	}
	return &n, nil
}

// Addrs are the nodes' host:port, in the order given.
func (n *Nodes) Addrs() []string { return n.addrs }

// Vhost is the virtual host every connection opens.
func (n *Nodes) Vhost() string { return n.vhost }

// User is the user every connection logs in as.
func (n *Nodes) User() string { return n.user }

// URI is the URL every connection's handshake uses; which node it reaches
// is the dial hook's choice.
func (n *Nodes) URI() string { return n.uri }

// Config returns an amqp091 configuration whose dial hook rotates through
// the nodes, each given timeout to connect and shake hands; props may be nil.
func (n *Nodes) Config(timeout time.Duration, props amqp.Table) amqp.Config {
	return amqp.Config{Dial: n.dialer(timeout), Properties: props}
}

// dialer ignores the address amqp091 took from the URI and tries each node
// in turn, from the one after the last that answered.
func (n *Nodes) dialer(timeout time.Duration) func(network, addr string) (net.Conn, error) {
	return func(network, _ string) (net.Conn, error) { return n.dial(network, timeout) }
}

func (n *Nodes) dial(network string, timeout time.Duration) (net.Conn, error) {
	n.mu.Lock()
	start := n.next
	n.mu.Unlock()
	var errs []error
	for i := range n.addrs {
		k := (start + i) % len(n.addrs)
		conn, err := dialOne(network, n.addrs[k], n.tls, timeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.addrs[k], err))
			continue
		}
		n.mu.Lock()
		n.next = (k + 1) % len(n.addrs)
		n.mu.Unlock()
		return conn, nil
	}
	return nil, errors.Join(errs...)
}

func dialOne(network, addr string, useTLS bool, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, err
	}
	// The deadline bounds the TLS and AMQP handshakes; amqp091 clears it
	// once the connection is open, as its own dialer's is.
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, err
	}
	if !useTLS {
		return conn, nil
	}
	host, _, _ := net.SplitHostPort(addr)
	tc := tls.Client(conn, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}
