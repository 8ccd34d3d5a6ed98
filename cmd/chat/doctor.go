package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chatsys/chat/config"
)

// errChecksFailed makes the process exit non-zero after a report of failures.
var errChecksFailed = errors.New("some checks failed")

// doctorTimeout bounds each check: a dependency that does not answer in
// time fails its check, and the checks after it are skipped.
const doctorTimeout = 5 * time.Second

// doctor runs checks against the configured dependencies: all of them
// without an argument, partial matching on Elasticsearch with "search".
// Each dependency's adapter package reports what it finds against what the
// processes declare (broker.Inspector, searchindex's MappingProblems,
// mysqldb's probes); the doctor only judges, and prints, what it is told.
func doctor(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	switch {
	case len(args) == 0:
		return doctorAll(ctx, cfg, out)
	case len(args) == 1 && args[0] == "search":
		return doctorSearch(ctx, cfg, out)
	}
	return fmt.Errorf("usage: chat doctor [search]")
}

// doctorAll checks every dependency. The dependencies are checked at once,
// each with its checks in order, and reported in a fixed order.
func doctorAll(ctx context.Context, cfg config.Config, out io.Writer) error {
	groups := []struct {
		dep   string
		check func(context.Context, config.Config, *checkup)
	}{
		{"mysql", checkMySQL},
		{"redis", checkRedis},
		{"rabbitmq", checkRabbitMQ},
		{"elasticsearch", checkElasticsearch},
	}
	fmt.Fprintf(out, "checking the dependencies of namespace %s (each check within %s)\n", cfg.Namespace, doctorTimeout)
	ups := make([]*checkup, len(groups))
	done := make([]chan struct{}, len(groups))
	for i, g := range groups {
		ups[i] = &checkup{dep: g.dep, timeout: doctorTimeout}
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			g.check(ctx, cfg, ups[i])
		}()
	}
	var count [4]int
	for i := range groups {
		<-done[i]
		for _, f := range ups[i].findings {
			count[f.verdict]++
			f.print(out, ups[i].dep)
		}
	}
	fmt.Fprintf(out, "%d ok, %d warnings, %d failed, %d skipped\n", count[passed], count[warned], count[failed], count[skipped])
	if count[failed] > 0 {
		return errChecksFailed
	}
	return nil
}

type verdict int

const (
	passed verdict = iota
	warned
	failed
	skipped
)

func (v verdict) String() string { return [...]string{"ok", "WARN", "FAIL", "skip"}[v] }

// finding is the outcome of one check: what was found or what is wrong,
// and for a warning or a failure, how to fix it.
type finding struct {
	verdict verdict
	what    string
	detail  string
	fix     string
}

func ok(format string, args ...any) finding {
	return finding{verdict: passed, detail: fmt.Sprintf(format, args...)}
}

func warn(detail, fix string) finding { return finding{verdict: warned, detail: detail, fix: fix} }

func fail(detail, fix string) finding { return finding{verdict: failed, detail: detail, fix: fix} }

const indent = "                    " // under the check's name

func (f finding) print(out io.Writer, dep string) {
	fmt.Fprintf(out, "%-4s  %-13s %s: %s\n", f.verdict, dep, f.what, strings.ReplaceAll(f.detail, "\n", "\n"+indent))
	if f.fix != "" {
		fmt.Fprintf(out, "%sfix: %s\n", indent, strings.ReplaceAll(f.fix, "\n", "\n"+indent+"     "))
	}
}

// checkup is one dependency's checks, run in order.
type checkup struct {
	dep      string
	where    string // the server, for a check that got no answer
	timeout  time.Duration
	findings []finding
	skip     string // why the remaining checks are skipped
}

// stop skips the remaining checks, for the first reason given.
func (c *checkup) stop(reason string) {
	if c.skip == "" {
		c.skip = reason
	}
}

// misconfigured reports a configuration variable the checks cannot start
// from.
func (c *checkup) misconfigured(ctx context.Context, variable string, err error) {
	c.run(ctx, "configuration", func(context.Context) finding { return fail(err.Error(), "correct "+variable) })
}

// run runs one check within the timeout and reports whether it passed (a
// warning passes). A check that does not finish in time fails and stops the
// checks after it; it is left to finish in the background, so it must not
// write anything the caller reads afterwards.
func (c *checkup) run(ctx context.Context, what string, check func(ctx context.Context) finding) bool {
	if c.skip != "" {
		c.findings = append(c.findings, finding{verdict: skipped, what: what, detail: c.skip})
		return false
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res := make(chan finding, 1)
	go func() { res <- check(ctx) }()
	var f finding
	select {
	case f = <-res:
	case <-ctx.Done():
		if parent.Err() != nil {
			f = fail("interrupted", "")
			c.stop("interrupted")
		} else {
			f = fail(fmt.Sprintf("%s: no answer within %s", c.where, c.timeout), "check that the server is up, not overloaded, and reachable from here")
			c.stop("an earlier check got no answer")
		}
	}
	f.what = what
	c.findings = append(c.findings, f)
	return f.verdict == passed || f.verdict == warned
}

// randomSuffix makes a scratch object's name its own run's.
func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
