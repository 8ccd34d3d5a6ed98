package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
)

// system is a running process of the binary, started in-process.
type system struct {
	URL  string
	stop func()
	// proc is the process of a system started by startBinary.
	proc *os.Process
	// logs returns what a process started by startBinary has logged so far.
	logs func() string
}

// start runs `chat serve`, `chat work` or `chat all` (by serve and work) with
// cfg until the test ends or stop is called.
func start(t *testing.T, cfg config.Config, serve, work bool) *system {
	t.Helper()
	return startTweaked(t, cfg, serve, work, func(*process) {})
}

// startTweaked is start with a chance to change the process before it runs.
func startTweaked(t *testing.T, cfg config.Config, serve, work bool, tweak func(*process)) *system {
	t.Helper()
	return startAt(t, cfg, "127.0.0.1:0", serve, work, tweak)
}

// startAt is startTweaked listening on addr, such as the address of a
// process the test stopped.
func startAt(t *testing.T, cfg config.Config, addr string, serve, work bool, tweak func(*process)) *system {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := newProcess(ctx, cfg, testenv.Logger(t, slog.LevelWarn), serve, work)
	if err != nil {
		cancel()
		t.Fatalf("start: %v", err)
	}
	tweak(p)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer p.close()
		if err := p.run(ctx, ln); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	s := &system{URL: "http://" + ln.Addr().String()}
	stopped := false
	s.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(s.stop)
	return s
}

// response is an HTTP answer with its body decoded.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	return m
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.json(t, &e)
	if e.Error.Message == "" {
		t.Errorf("error body without message: %s", r.Body)
	}
	return e.Error.Code
}

var client = &http.Client{Timeout: 30 * time.Second}

// call sends body (a string is sent as is, anything else as JSON).
func (s *system) call(t *testing.T, method, path string, body any) response {
	t.Helper()
	return s.callWith(t, method, path, body, nil)
}

// callWith is call with extra request headers.
func (s *system) callWith(t *testing.T, method, path string, body any, header http.Header) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// must calls and fails the test unless the status is want.
func (s *system) must(t *testing.T, want int, method, path string, body any) response {
	t.Helper()
	r := s.call(t, method, path, body)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// eventually repeats a GET until it answers 200 and check accepts the body.
func (s *system) eventually(t *testing.T, path string, check func(r response) bool) response {
	t.Helper()
	var last response
	testenv.Eventually(t, 15*time.Second, "GET "+path, func() bool {
		last = s.call(t, http.MethodGet, path, nil)
		return last.Status == http.StatusOK && (check == nil || check(last))
	})
	return last
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// startBinary runs `chat serve` as a separate process built without the race
// detector. Tests that cut the broker connection use it: watermill-amqp
// v2.1.3 replaces ConnectionWrapper.connected on a reconnect without
// synchronisation, which the race detector reports in any process whose
// broker connection drops while it publishes.
func startBinary(t *testing.T, cfg config.Config) *system {
	t.Helper()
	return startBinaryCommand(t, cfg, "serve")
}

// startBinaryCommand is startBinary running command (serve, work or all).
func startBinaryCommand(t *testing.T, cfg config.Config, command string) *system {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chat-bin")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "chat")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(binary, command)
	cmd.Env = append(os.Environ(),
		"CHAT_HTTP_ADDR="+addr,
		"CHAT_MYSQL_DSN="+cfg.MySQLDSN,
		"CHAT_REDIS_URL="+cfg.RedisURL,
		"CHAT_AMQP_URL="+cfg.AMQPURL,
		"CHAT_ELASTICSEARCH_URL="+cfg.ElasticsearchURL,
		"CHAT_NAMESPACE="+cfg.Namespace,
		"CHAT_PUBLISH_TIMEOUT="+cfg.PublishTimeout.String(),
		"CHAT_PUBLISH_CHANNELS="+strconv.Itoa(cfg.PublishChannels),
		"CHAT_STORE_PREFETCH="+strconv.Itoa(cfg.StorePrefetch),
		"CHAT_STORE_QUEUE_BYTES="+strconv.Itoa(cfg.StoreQueueBytes),
		"CHAT_LOG_LEVEL=warn",
	)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s := &system{URL: "http://" + addr, logs: logs.String, proc: cmd.Process}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("chat %s logs:\n%s", command, logs.String())
		}
	}
	t.Cleanup(s.stop)
	testenv.Eventually(t, 30*time.Second, "chat "+command+" to answer", func() bool {
		resp, err := client.Get(s.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}
