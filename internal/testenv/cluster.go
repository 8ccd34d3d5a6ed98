package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/rediscluster"
)

// Cluster is a Redis Cluster of local redis-server processes: three masters,
// each with a replica, on free loopback ports, without persistence.
type Cluster struct {
	URL   string
	dir   string
	addrs []string
}

var shared struct {
	sync.Mutex
	main    bool
	cluster *Cluster
	err     error
}

// Main runs a test binary's tests, then stops the cluster SharedCluster
// started, if any. A package whose tests use SharedCluster calls it from
// TestMain.
func Main(m *testing.M) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.cluster != nil {
		shared.cluster.stop()
	}
	return code
}

// SharedCluster returns the test binary's cluster, started on first use and
// stopped by Main. Tests that kill or fail over nodes start their own.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	skipShort(t)
	shared.Lock()
	defer shared.Unlock()
	if !shared.main {
		t.Fatal("SharedCluster needs the package's TestMain to run testenv.Main, which stops the cluster")
	}
	if shared.cluster == nil && shared.err == nil {
		shared.cluster, shared.err = startCluster()
	}
	if shared.err != nil {
		t.Fatalf("start a Redis Cluster: %v", shared.err)
	}
	return shared.cluster
}

// NewCluster starts a cluster of the test's own, stopped when it ends.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	skipShort(t)
	c, err := startCluster()
	if err != nil {
		t.Fatalf("start a Redis Cluster: %v", err)
	}
	t.Cleanup(c.stop)
	return c
}

func skipShort(t testing.TB) {
	if testing.Short() {
		t.Skip("needs redis-server; -short runs only the tests that need no service")
	}
}

func startCluster() (_ *Cluster, err error) {
	dir, err := os.MkdirTemp("", "chat-redis-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	for _, p := range ports {
		node := filepath.Join(dir, strconv.Itoa(p))
		if err := os.Mkdir(node, 0o755); err != nil {
			return nil, err
		}
		out, err := exec.Command("redis-server", "--port", strconv.Itoa(p), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(node, "nodes.conf"),
			"--cluster-node-timeout", "2000", "--dir", node, "--save", "", "--appendonly", "no",
			"--daemonize", "yes", "--pidfile", filepath.Join(node, "redis.pid"),
			"--logfile", filepath.Join(node, "redis.log")).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("redis-server on port %d: %w: %s", p, err, out)
		}
		c.addrs = append(c.addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	for _, a := range c.addrs {
		if err := waitFor(10*time.Second, func() bool { return c.node(a).Ping(context.Background()).Err() == nil }); err != nil {
			return nil, fmt.Errorf("redis-server at %s: %w", a, err)
		}
	}
	args := append([]string{"--cluster", "create"}, c.addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	if err := c.waitHealthy(30 * time.Second); err != nil {
		return nil, err
	}
	c.URL = "redis://" + c.addrs[0] + "?addr=" + strings.Join(c.addrs[1:], "&addr=")
	return c, nil
}

// node returns a client of one node, for a moment's use.
func (c *Cluster) node(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
}

// waitHealthy waits until every live node says the cluster is ok and three
// masters serve slots, each with a replica in sync.
func (c *Cluster) waitHealthy(timeout time.Duration) error {
	return waitFor(timeout, func() bool {
		ctx := context.Background()
		masters, replicas := 0, 0
		for _, a := range c.addrs {
			n := c.node(a)
			info, err := n.ClusterInfo(ctx).Result()
			if err != nil {
				n.Close()
				continue // a node that was killed
			}
			if !strings.Contains(info, "cluster_state:ok") {
				n.Close()
				return false
			}
			repl, err := n.Info(ctx, "replication").Result()
			n.Close()
			switch {
			case err != nil:
				return false
			case strings.Contains(repl, "role:master"):
				masters++
			case strings.Contains(repl, "master_link_status:up"):
				replicas++
			}
		}
		return masters >= 3 && replicas >= 3
	})
}

// Failover has a replica take over from its master (CLUSTER FAILOVER, the
// planned kind: the replica catches up first) and waits until it serves. It
// returns the new master's address.
func (c *Cluster) Failover(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	for _, a := range c.addrs {
		n := c.node(a)
		repl, err := n.Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(repl, "role:slave") {
			n.Close()
			continue
		}
		if err := n.ClusterFailover(ctx).Err(); err != nil {
			n.Close()
			t.Fatalf("CLUSTER FAILOVER on %s: %v", a, err)
		}
		err = waitFor(30*time.Second, func() bool {
			r, err := n.Info(ctx, "replication").Result()
			return err == nil && strings.Contains(r, "role:master")
		})
		n.Close()
		if err != nil {
			t.Fatalf("replica %s did not take over: %v", a, err)
		}
		if err := c.waitHealthy(30 * time.Second); err != nil {
			t.Fatalf("cluster after the failover: %v", err)
		}
		return a
	}
	t.Fatal("no replica to fail over to")
	return ""
}

// KillMasterOf kills the master that serves slot with SIGKILL, as a crash
// would, and returns its address; its replica takes over once the cluster
// notices (node timeout 2 s).
func (c *Cluster) KillMasterOf(t testing.TB, slot int) string {
	t.Helper()
	n := c.node(c.addrs[0])
	defer n.Close()
	shards, err := n.ClusterShards(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLUSTER SHARDS: %v", err)
	}
	for _, sh := range shards {
		serves := false
		for _, r := range sh.Slots {
			serves = serves || (slot >= int(r.Start) && slot <= int(r.End))
		}
		if !serves {
			continue
		}
		for _, node := range sh.Nodes {
			if node.Role != "master" {
				continue
			}
			addr := net.JoinHostPort(node.IP, strconv.FormatInt(node.Port, 10))
			b, err := os.ReadFile(filepath.Join(c.dir, strconv.FormatInt(node.Port, 10), "redis.pid"))
			if err != nil {
				t.Fatalf("pid of %s: %v", addr, err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 {
				t.Fatalf("pid of %s: %q", addr, b)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill %s: %v", addr, err)
			}
			return addr
		}
	}
	t.Fatalf("no master serves slot %d", slot)
	return ""
}

// stop kills every node by the pid it wrote and removes its files.
func (c *Cluster) stop() {
	for _, a := range c.addrs {
		_, port, _ := net.SplitHostPort(a)
		b, err := os.ReadFile(filepath.Join(c.dir, port, "redis.pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.RemoveAll(c.dir)
}

// freePorts finds n loopback ports that are free along with their cluster
// bus ports (the port plus 10000).
func freePorts(n int) ([]int, error) {
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100 {
			return nil, fmt.Errorf("found only %d free port pairs", len(ports))
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		p := ln.Addr().(*net.TCPAddr).Port
		if p+10000 > 65535 {
			ln.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		if err != nil {
			ln.Close()
			continue
		}
		ln.Close()
		bus.Close()
		ports = append(ports, p)
	}
	return ports, nil
}

func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// RedisBackend is a Redis deployment a test runs on.
type RedisBackend struct {
	Name string
	// URL is its CHAT_REDIS_URL ("" for the configured server).
	URL func(t testing.TB) string
}

// RedisBackends are the deployments the Redis stores are tested on: the
// configured server, and the test binary's cluster (see SharedCluster).
func RedisBackends() []RedisBackend {
	return []RedisBackend{
		{"single", func(testing.TB) string { return "" }},
		{"cluster", func(t testing.TB) string { return SharedCluster(t).URL }},
	}
}

// Keys lists the keys matching pattern on every master.
func Keys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	var (
		mu   sync.Mutex
		keys []string
	)
	err := rediscluster.ForEachMaster(ctx, rdb, func(ctx context.Context, m rediscluster.Master) error {
		found, err := m.Client.Keys(ctx, pattern).Result()
		mu.Lock()
		keys = append(keys, found...)
		mu.Unlock()
		return err
	})
	return keys, err
}
