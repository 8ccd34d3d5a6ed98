package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
)

// TestMemoryWithLargeBodies measures, and does not judge, the memory a
// build of the binary takes with the largest bodies: 600 messages of 64 KiB
// of '<', then six pages of 1,000 read at once, then a replay of the read
// tables and a verify. It runs only when CHAT_MEASURE_BINARY names a binary
// (go build -o /tmp/chat ./cmd/chat) and logs the figures (go test -v).
// Search is pointed at a closed port, so no search engine takes the load.
func TestMemoryWithLargeBodies(t *testing.T) {
	bin := os.Getenv("CHAT_MEASURE_BINARY")
	if bin == "" {
		t.Skip("CHAT_MEASURE_BINARY is not set")
	}
	cfg := testenv.Config(t)
	cfg.ElasticsearchURL = "http://127.0.0.1:1"
	serve, api := runBinary(t, bin, cfg, "serve")
	work, _ := runBinary(t, bin, cfg, "work")
	s := &system{URL: api}
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "memory"}).object(t)["token"].(string)
	chat := "/applications/" + token + "/chats/1"
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	s.eventually(t, chat, nil)

	const messages = 600
	body, err := json.Marshal(map[string]string{"body": strings.Repeat("<", 64<<10)})
	if err != nil {
		t.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= messages {
				resp, err := client.Post(api+chat+"/messages", "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					t.Errorf("POST: %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	testenv.Eventually(t, 2*time.Minute, "every message projected", func() bool {
		return s.call(t, "GET", chat+"/messages?per_page=1", nil).Header.Get("X-Total-Count") == strconv.Itoa(messages)
	})
	t.Logf("work: peak RSS %d MiB after projecting %d messages", procStatusKiB(work, "VmHWM")>>10, messages)

	before := procStatusKiB(serve, "VmRSS")
	began := time.Now()
	var read atomic.Int64
	for range 6 {
		wg.Go(func() {
			resp, err := client.Get(api + chat + "/messages?per_page=1000")
			if err != nil {
				t.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			read.Add(n)
		})
	}
	wg.Wait()
	t.Logf("serve: RSS %d MiB before six pages of 1,000 at once, peak %d MiB; %d MiB answered in %s",
		before>>10, procStatusKiB(serve, "VmHWM")>>10, read.Load()>>20, time.Since(began).Round(time.Millisecond))

	for _, args := range [][]string{{"replay", "mysql"}, {"verify", "--no-search"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = binaryEnv(cfg)
		began := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("%s: peak RSS %d MiB, %s", strings.Join(args, " "), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss>>10, time.Since(began).Round(time.Millisecond))
	}
}

func binaryEnv(cfg config.Config) []string {
	return append(os.Environ(), "CHAT_MYSQL_DSN="+cfg.MySQLDSN, "CHAT_REDIS_URL="+cfg.RedisURL, "CHAT_AMQP_URL="+cfg.AMQPURL,
		"CHAT_ELASTICSEARCH_URL="+cfg.ElasticsearchURL, "CHAT_NAMESPACE="+cfg.Namespace, "CHAT_LOG_LEVEL=error")
}

// runBinary runs `bin command` until the test ends and returns its process
// id and URL.
func runBinary(t *testing.T, bin string, cfg config.Config, command string) (int, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, command)
	cmd.Env = append(binaryEnv(cfg), "CHAT_HTTP_ADDR="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	url := "http://" + addr
	testenv.Eventually(t, 30*time.Second, "chat "+command+" to answer", func() bool {
		resp, err := client.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return cmd.Process.Pid, url
}

// procStatusKiB reads a field of /proc/<pid>/status (VmRSS, VmHWM), in KiB.
func procStatusKiB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			if fields := strings.Fields(v); len(fields) > 0 {
				n, _ := strconv.ParseInt(fields[0], 10, 64)
				return n
			}
		}
	}
	return -1
}
