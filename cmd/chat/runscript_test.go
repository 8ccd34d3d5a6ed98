package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
)

// The run script builds ./cmd/chat first; on a cold build cache that takes a
// while on a busy machine.
const runReadyTimeout = 4 * time.Minute

// runEnv is the environment of `make run` for cfg's namespace, with the API on
// a free port and the binary built into a directory of the test's; the search
// engine is left to extra.
func runEnv(t *testing.T, cfg config.Config, extra ...string) (env []string, url string) {
	var keep []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "CHAT_"), strings.HasPrefix(name, "ZINC_"),
			name == "BIN_DIR", name == "GO", name == "GOFLAGS",
			// Left by `make test`; an inner make would join its job server.
			name == "MAKEFLAGS", name == "MFLAGS", name == "MAKELEVEL":
		default:
			keep = append(keep, kv)
		}
	}
	addr := closedPort(t)
	keep = append(keep,
		"CHAT_HTTP_ADDR="+addr,
		"CHAT_NAMESPACE="+cfg.Namespace,
		"CHAT_MYSQL_DSN="+cfg.MySQLDSN,
		"CHAT_REDIS_URL="+cfg.RedisURL,
		"CHAT_AMQP_URL="+cfg.AMQPURL,
		"CHAT_STORE_PREFETCH=32",
		"CHAT_PUBLISH_CHANNELS=8",
		"CHAT_SHUTDOWN_TIMEOUT=10s",
		"BIN_DIR="+t.TempDir(),
	)
	// Built like this test binary, the server reuses its compiled packages.
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				keep = append(keep, "GOFLAGS=-race")
			}
		}
	}
	return append(keep, extra...), "http://" + addr
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// scriptRun is `make run` or scripts/run.sh, in a process group of its own
// so that interrupt reaches every process in it, as Ctrl-C does.
type scriptRun struct {
	cmd  *exec.Cmd
	url  string
	out  *syncBuffer
	done chan struct{}
	err  error
}

// startRun runs args (a shell command line) in the repository's root.
func startRun(t *testing.T, env []string, url, command string) *scriptRun {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", command)
	cmd.Dir = "../.."
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &scriptRun{cmd: cmd, url: url, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.interrupt(t)
		}
		if t.Failed() {
			t.Logf("%s:\n%s", command, p.out)
		}
	})
	return p
}

// waitReady waits for the server's /readyz.
func (p *scriptRun) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(runReadyTimeout)
	for {
		if resp, err := http.Get(p.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("exited before the server was ready: %v", p.err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server was not ready within %s", runReadyTimeout)
		}
	}
}

// interrupt sends SIGINT to the process group, as Ctrl-C in a terminal does,
// and waits for the script to end.
func (p *scriptRun) interrupt(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	p.wait(t, time.Minute)
}

func (p *scriptRun) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Errorf("did not end within %s of Ctrl-C", timeout)
	}
}

var (
	standInOnce sync.Once
	standInPath string
	standInErr  error
)

// standInDir returns a directory for scripts/run.sh's stand-in files (ZINC_DIR)
// holding the stand-in binary, which `make test` builds into bin/zinc; it is
// built there when missing, if that is quick (a warm build cache).
func standInDir(t *testing.T) string {
	t.Helper()
	standInOnce.Do(func() {
		bin, err := filepath.Abs("../../bin/zinc/zincsearch")
		if err != nil {
			standInErr = err
			return
		}
		standInPath = bin
		if _, err := os.Stat(bin); err == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
		build.Dir = "../../tools/zincsearch"
		if out, err := build.CombinedOutput(); err != nil {
			standInErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if standInErr != nil {
		t.Skipf("the ZincSearch stand-in is not built and could not be built within 2 minutes (`make test` builds it into bin/zinc): %v", standInErr)
	}
	dir := t.TempDir()
	if err := os.Symlink(standInPath, filepath.Join(dir, "zincsearch")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// processGone reports whether pid has exited (a zombie not yet reaped by
// whoever inherited it counts as gone).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

func answers(url string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url + "/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func needCommands(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s is not installed", name)
		}
	}
}

// TestRunScriptStartsTheStandIn runs `make run`'s script as on a machine
// without Elasticsearch: it starts the ZincSearch stand-in, the README's curl
// session finds its message, Ctrl-C stops the stand-in, and a second run
// finds the message again in the stand-in's data.
func TestRunScriptStartsTheStandIn(t *testing.T) {
	t.Parallel()
	needCommands(t, "curl")
	cfg := testenv.Config(t)
	zincDir := standInDir(t)
	zincPort := strings.TrimPrefix(closedPort(t), "127.0.0.1:")
	zincURL := "http://127.0.0.1:" + zincPort
	env, url := runEnv(t, cfg, "ZINC_DIR="+zincDir, "ZINC_PORT="+zincPort)

	var token string
	for round := 1; round <= 2; round++ {
		run := startRun(t, env, url, "scripts/run.sh")
		run.waitReady(t)
		if out := run.out.String(); !strings.Contains(out, "search: ZincSearch stand-in") || !strings.Contains(out, zincURL) {
			t.Fatalf("round %d: the script does not say it started the stand-in on %s:\n%s", round, zincURL, out)
		}
		b, err := os.ReadFile(filepath.Join(zincDir, "zincsearch-"+zincPort+".pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if !processGone(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})

		if round == 1 {
			out := runSession(t, readmeBlock(t, "## Quick start", 2), url, "*Hello*")
			m := regexp.MustCompile(`"token":"([^"]+)"`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no token in the session's output:\n%s", out)
			}
			token = m[1]
		} else {
			// Nothing was written in this round: the index survived.
			s := &system{URL: url}
			testenv.Eventually(t, 10*time.Second, "the search to find the first round's message", func() bool {
				r := s.call(t, "GET", "/applications/"+token+"/chats/1/messages/search?q=wor", nil)
				return r.Status == 200 && strings.Contains(string(r.Body), "Hello, world!")
			})
		}

		run.interrupt(t)
		deadline := time.Now().Add(15 * time.Second)
		for !processGone(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if !processGone(pid) || answers(zincURL) {
			t.Fatalf("round %d: the stand-in (pid %d) still runs after Ctrl-C", round, pid)
		}
		if !strings.Contains(run.out.String(), "stopped the search stand-in") {
			t.Errorf("round %d: the script does not say it stopped the stand-in:\n%s", round, run.out)
		}
	}
}

// TestRunScriptPortTaken runs the script with the stand-in's port held by
// something that is not Elasticsearch and the API's port taken too: the
// stand-in goes to another port, which the script remembers, and stops when
// the server exits.
func TestRunScriptPortTaken(t *testing.T) {
	t.Parallel()
	needCommands(t, "curl")
	cfg := testenv.Config(t)
	zincDir := standInDir(t)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "not a search engine")
	}))
	defer other.Close()
	takenPort := strings.TrimPrefix(other.URL, "http://127.0.0.1:")
	env, url := runEnv(t, cfg, "ZINC_DIR="+zincDir, "ZINC_PORT="+takenPort)
	ln, err := net.Listen("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	run := startRun(t, env, url, "scripts/run.sh")
	run.wait(t, runReadyTimeout)
	out := run.out.String()
	if run.err == nil {
		t.Errorf("the script succeeded though the server could not listen:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(zincDir, "run.port"))
	if err != nil {
		t.Fatalf("no remembered port: %v\n%s", err, out)
	}
	port := strings.TrimSpace(string(b))
	if port == takenPort || !strings.Contains(out, "127.0.0.1:"+takenPort+" is taken by something that is not Elasticsearch") ||
		!strings.Contains(out, "search: ZincSearch stand-in") || !strings.Contains(out, "http://127.0.0.1:"+port) {
		t.Fatalf("the script does not say it put the stand-in on port %s instead of %s:\n%s", port, takenPort, out)
	}
	m := regexp.MustCompile(`stopped the search stand-in \(pid (\d+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the script does not say it stopped the stand-in:\n%s", out)
	}
	pid, _ := strconv.Atoi(m[1])
	if !processGone(pid) || answers("http://127.0.0.1:"+port) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("the stand-in (pid %d) still runs after the server exited", pid)
	}
}
