package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
)

// readmeBlock returns the shell block of README.md that follows heading.
func readmeBlock(t *testing.T, heading string, nth int) string {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, heading)
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s[i:], nth+1)
	if len(blocks) <= nth {
		t.Fatalf("README has no shell block %d after %q", nth, heading)
	}
	return blocks[nth][1]
}

// runSession runs a README curl session against the server at url (in place
// of localhost:8080) and returns its output. The search at its end may run
// before the messages are indexed: the session's last command is retried
// until its output matches found, a shell case pattern.
func runSession(t *testing.T, session, url, found string) string {
	t.Helper()
	session = strings.ReplaceAll(session, "localhost:8080", strings.TrimPrefix(url, "http://"))
	lines := strings.Split(strings.TrimSpace(session), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "/search?") {
		t.Fatalf("the README session does not end with a search: %s", last)
	}
	script := strings.Join(lines[:len(lines)-1], "\n") + "\nfor i in $(seq 100); do out=$(" + last + "); case $out in " + found + ") echo \"$out\"; exit 0;; esac; sleep 0.1; done; echo \"$out\"; exit 1\n"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the README session did not finish:\n%s", out)
	}
	if err != nil {
		t.Fatalf("the README session failed: %v\n%s", err, out)
	}
	return string(out)
}

// TestReadmeCurlSession runs the README's curl session against a server
// (the Docker quick start's; the machine has no container engine, so the
// session runs against a process on a free port instead of localhost:8080).
func TestReadmeCurlSession(t *testing.T) {
	t.Parallel()
	needCommands(t, "curl")
	s := start(t, testenv.Config(t), true, true)
	out := runSession(t, readmeBlock(t, "## Quick start", 2), s.URL, "*Help*Hello*|*Hello*Help*")
	for _, want := range []string{`"name":"general"`, `"number":2`, `"body":"Hello, world!"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the README session's output lacks %s:\n%s", want, out)
		}
	}
}

// TestReadmeLocalQuickStart runs the README's local quick start as written
// (`make run`, then its curl session, search included), on a namespace of its
// own and a free port, with the search engine the tests use: given one, the
// run starts no stand-in.
func TestReadmeLocalQuickStart(t *testing.T) {
	t.Parallel()
	needCommands(t, "curl", "make")
	cfg := testenv.Config(t)
	env, url := runEnv(t, cfg, "CHAT_ELASTICSEARCH_URL="+cfg.ElasticsearchURL)
	run := startRun(t, env, url, readmeBlock(t, "## Quick start", 1))
	run.waitReady(t)

	out := runSession(t, readmeBlock(t, "## Quick start", 2), url, "*Hello*")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if found := lines[len(lines)-1]; !strings.Contains(found, `"body":"Hello, world!"`) {
		t.Errorf("the search found no message: %s", found)
	}
	if !strings.Contains(out, `"name":"general"`) {
		t.Errorf("the session made no chat:\n%s", out)
	}

	run.interrupt(t)
	log := run.out.String()
	if !strings.Contains(log, "search: ") || !strings.Contains(log, "(CHAT_ELASTICSEARCH_URL)") || strings.Contains(log, "search stand-in") {
		t.Errorf("the run did not use CHAT_ELASTICSEARCH_URL alone:\n%s", log)
	}
	for _, kv := range env {
		if dir, ok := strings.CutPrefix(kv, "BIN_DIR="); ok {
			if _, err := os.Stat(dir + "/zinc"); err == nil {
				t.Errorf("the run made a stand-in directory %s/zinc", dir)
			}
		}
	}
}
