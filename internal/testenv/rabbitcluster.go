package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rabbitBin is where the Debian package keeps RabbitMQ's own scripts; the
// ones in /usr/sbin switch to the rabbitmq user, whose HOME holds the
// machine's node's cookie.
const rabbitBin = "/usr/lib/rabbitmq/bin"

// RabbitCluster is a RabbitMQ cluster of its own on loopback, started from
// the installed package: every node has its own name, ports, data and log
// directories under a temporary directory, and the nodes share a cookie
// that no other node has. The machine's own node is never touched.
type RabbitCluster struct {
	t     testing.TB
	dir   string
	Nodes []*RabbitNode
}

// RabbitNode is one node of a RabbitCluster.
type RabbitNode struct {
	Name string // e.g. chatq1x…@localhost
	Port int    // its AMQP port
	dir  string
	cmd  *exec.Cmd

	mu      sync.Mutex
	stopped bool
}

// StartRabbitCluster starts size nodes and joins them into one cluster, and
// stops them when the test ends. It skips the test under -short or when
// RabbitMQ is not installed.
func StartRabbitCluster(t testing.TB, size int) *RabbitCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a RabbitMQ cluster; -short runs only the tests that need no service")
	}
	if _, err := os.Stat(filepath.Join(rabbitBin, "rabbitmq-server")); err != nil {
		t.Skipf("RabbitMQ is not installed: %v", err)
	}
	c := &RabbitCluster{t: t, dir: t.TempDir()}
	home := filepath.Join(c.dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"home/.erlang.cookie": "CHATQ" + strings.ToUpper(randomString(20)),
		"enabled_plugins":     "[].\n",
		// An empty environment file keeps the machine's (its node name,
		// its listeners) out of ours.
		"rabbitmq-env.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	suffix := randomString(6)
	for i := 1; i <= size; i++ {
		n := &RabbitNode{Name: fmt.Sprintf("chatq%dx%s@localhost", i, suffix), Port: freePort(t), dir: filepath.Join(c.dir, fmt.Sprintf("n%d", i))}
		c.Nodes = append(c.Nodes, n)
		if err := c.start(n); err != nil {
			t.Fatalf("start %s: %v", n.Name, err)
		}
	}
	t.Cleanup(c.stopAll)
	for _, n := range c.Nodes {
		// await_startup fails at once while the node is not registered yet.
		deadline := time.Now().Add(90 * time.Second)
		for {
			err := c.ctl(n, 60*time.Second, "await_startup")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not start: %v\n%s", n.Name, err, n.log())
			}
			time.Sleep(time.Second)
		}
	}
	for _, n := range c.Nodes[1:] {
		for _, args := range [][]string{{"stop_app"}, {"join_cluster", c.Nodes[0].Name}, {"start_app"}} {
			if err := c.ctl(n, 60*time.Second, args...); err != nil {
				t.Fatalf("%s: rabbitmqctl %s: %v", n.Name, strings.Join(args, " "), err)
			}
		}
	}
	return c
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// env is the environment of the node's server and of the CLI tools aimed
// at it.
func (c *RabbitCluster) env(n *RabbitNode) []string {
	return append(os.Environ(),
		"HOME="+filepath.Join(c.dir, "home"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(c.dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(c.dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(n.dir, "rabbitmq.conf"),
		"RABBITMQ_NODENAME="+n.Name,
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
}

func (c *RabbitCluster) start(n *RabbitNode) error {
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return err
	}
	// The distribution port is free now and taken by the node in a moment;
	// another node of the machine taking it first is unlikely enough.
	conf := fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\n", n.Port)
	if err := os.WriteFile(filepath.Join(n.dir, "rabbitmq.conf"), []byte(conf), 0o600); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(n.dir, "server.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	n.cmd = exec.Command(filepath.Join(rabbitBin, "rabbitmq-server"))
	n.cmd.Dir = n.dir
	n.cmd.Env = append(c.env(n),
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", n.Port),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", freePort(c.t)),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(n.dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(n.dir, "pid"),
	)
	n.cmd.Stdout, n.cmd.Stderr = out, out
	// Its own process group, so that what the script starts can be ended
	// with it, by its id.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return err
	}
	go func() { _ = n.cmd.Wait() }()
	return nil
}

func (n *RabbitNode) log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "server.out"))
	return string(b)
}

// ctl runs rabbitmqctl against node n.
func (c *RabbitCluster) ctl(n *RabbitNode, timeout time.Duration, args ...string) error {
	_, err := c.ctlOutput(n, timeout, args...)
	return err
}

func (c *RabbitCluster) ctlOutput(n *RabbitNode, timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(rabbitBin, "rabbitmqctl"), append([]string{"-n", n.Name}, args...)...)
	cmd.Env = c.env(n)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return out, fmt.Errorf("%w: %s%s", err, out, stderr)
	}
	return out, nil
}

// URLs is CHAT_AMQP_URL naming every node of the cluster.
func (c *RabbitCluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.Port)
	}
	return strings.Join(urls, ",")
}

// Leader returns the node that leads a quorum queue, asking a running node.
func (c *RabbitCluster) Leader(queue string) (*RabbitNode, error) {
	for _, asked := range c.Nodes {
		if asked.isStopped() {
			continue
		}
		out, err := c.ctlOutput(asked, 30*time.Second, "list_queues", "-q", "--formatter", "json", "name", "leader")
		if err != nil {
			return nil, err
		}
		var rows []struct{ Name, Leader string }
		if err := json.Unmarshal(out, &rows); err != nil {
			return nil, fmt.Errorf("list_queues: %w: %s", err, out)
		}
		for _, r := range rows {
			if r.Name != queue {
				continue
			}
			for _, n := range c.Nodes {
				if n.Name == r.Leader {
					return n, nil
				}
			}
			return nil, fmt.Errorf("queue %s: leader %q is not a node of the cluster", queue, r.Leader)
		}
		return nil, fmt.Errorf("queue %s not found", queue)
	}
	return nil, fmt.Errorf("no node is running")
}

// Stop stops node n (rabbitmqctl stop, else its process group is killed).
func (c *RabbitCluster) Stop(n *RabbitNode) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	n.stopped = true
	if err := c.ctl(n, 60*time.Second, "stop"); err != nil {
		c.t.Logf("stop %s: %v; killing its processes", n.Name, err)
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (n *RabbitNode) isStopped() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopped
}

func (c *RabbitCluster) stopAll() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		if n.cmd == nil || n.cmd.Process == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Stop(n)
		}()
	}
	wg.Wait()
}
