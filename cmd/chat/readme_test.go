package main

import (
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

// TestReadmeCurlSession runs the README's curl session against a server
// (the Docker quick start's; the machine has no container engine, so the
// session runs against a process on a free port instead of localhost:8080).
func TestReadmeCurlSession(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	s := start(t, testenv.Config(t), true, true)
	session := readmeBlock(t, "## Quick start with Docker", 1)
	session = strings.ReplaceAll(session, "localhost:8080", strings.TrimPrefix(s.URL, "http://"))
	// The search at the end may run before the message is indexed: retry
	// the script's last command until it finds both messages.
	lines := strings.Split(strings.TrimSpace(session), "\n")
	last := lines[len(lines)-1]
	script := strings.Join(lines[:len(lines)-1], "\n") + "\nfor i in $(seq 100); do out=$(" + last + "); case $out in *Help*Hello*|*Hello*Help*) echo \"$out\"; exit 0;; esac; sleep 0.1; done; echo \"$out\"; exit 1\n"
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the README session did not finish")
	}
	if err != nil {
		t.Fatalf("the README session failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"name":"general"`, `"number":2`, `"body":"Hello, world!"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the README session's output lacks %s:\n%s", want, out)
		}
	}
}
