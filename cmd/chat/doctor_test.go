package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
)

// doctorEnv is the environment that makes config.Load return cfg's services
// and namespace, with some variables replaced.
func doctorEnv(cfg config.Config, replace map[string]string) func(string) (string, bool) {
	env := map[string]string{
		"CHAT_MYSQL_DSN":         cfg.MySQLDSN,
		"CHAT_REDIS_URL":         cfg.RedisURL,
		"CHAT_AMQP_URL":          cfg.AMQPURL,
		"CHAT_ELASTICSEARCH_URL": cfg.ElasticsearchURL,
		"CHAT_NAMESPACE":         cfg.Namespace,
	}
	for k, v := range replace {
		env[k] = v
	}
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// doctorLine is one check's line of the report: verdict, dependency, check.
var doctorLine = regexp.MustCompile(`^(ok|WARN|FAIL|skip) +(mysql|redis|rabbitmq|elasticsearch) +([^:]+): (.*)$`)

type doctorReport struct {
	code    int
	out     string
	elapsed time.Duration
	verdict map[string]string // "redis reachable" → "FAIL"
	detail  map[string]string
}

func runDoctor(t *testing.T, lookup func(string) (string, bool), args ...string) doctorReport {
	t.Helper()
	var out, errOut bytes.Buffer
	began := time.Now()
	code := run(context.Background(), append([]string{"doctor"}, args...), lookup, &out, &errOut)
	r := doctorReport{code: code, out: out.String(), elapsed: time.Since(began), verdict: map[string]string{}, detail: map[string]string{}}
	for _, line := range strings.Split(r.out, "\n") {
		if m := doctorLine.FindStringSubmatch(line); m != nil {
			key := m[2] + " " + m[3]
			r.verdict[key], r.detail[key] = m[1], m[4]
		}
	}
	t.Logf("chat doctor: exit %d after %s\n%s%s", code, r.elapsed.Round(time.Millisecond), r.out, errOut.String())
	return r
}

// doctorChecks are the checks of a namespace, as the report names them.
func doctorChecks(ns string, partitions int) []string {
	names := broker.NamesFor(ns, partitions)
	checks := []string{"mysql reachable", "mysql database", "mysql privileges", "mysql migrations", "mysql partitions"}
	for p := range partitions {
		checks = append(checks, fmt.Sprintf("mysql partition %d", p))
	}
	checks = append(checks, "redis reachable", "redis numbering epoch", "redis persistence",
		"rabbitmq reachable", "rabbitmq exchange "+names.Exchange, "rabbitmq queue "+names.DeadStore)
	for _, q := range names.StoreQueues() {
		checks = append(checks, "rabbitmq queue "+q)
	}
	return append(checks, "rabbitmq parked events", "rabbitmq queued events",
		"elasticsearch reachable", "elasticsearch alias "+catalog.New(ns).SearchAlias(), "elasticsearch mapping")
}

// startWorker starts `chat work` and waits until it writes the partitions
// (the store queue has consumers) and its search projector has created the
// index.
func startWorker(t *testing.T, cfg config.Config) {
	t.Helper()
	start(t, cfg, false, true)
	testenv.Eventually(t, testenv.SearchWait, "the worker consuming and the index created", func() bool {
		stats, err := broker.QueueStats(context.Background(), cfg.AMQPURL, broker.NamesFor(cfg.Namespace, cfg.Partitions).Store)
		if err != nil || stats[0].Consumers == 0 {
			return false
		}
		res, err := http.Get(cfg.ElasticsearchURL + "/_alias/" + catalog.New(cfg.Namespace).SearchAlias())
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// TestDoctor runs `chat doctor` on a migrated namespace with a worker
// running: every check passes. (Redis's persistence may warn: the test
// server need not run with AOF.)
func TestDoctor(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	startWorker(t, cfg)

	r := runDoctor(t, doctorEnv(cfg, nil))
	if r.code != 0 {
		t.Errorf("exit %d, want 0", r.code)
	}
	for _, check := range doctorChecks(cfg.Namespace, cfg.Partitions) {
		got, want := r.verdict[check], "ok"
		if check == "redis persistence" && got == "WARN" {
			if !strings.Contains(r.detail[check], "appendonly no") {
				t.Errorf("%s warns without saying AOF is off: %s", check, r.detail[check])
			}
			continue
		}
		if got != want {
			t.Errorf("%s: %q, want %q", check, got, want)
		}
	}
	if strings.Contains(r.out, "FAIL") {
		t.Error("a check failed")
	}
	if !strings.Contains(r.detail["mysql reachable"], "server ") || !strings.Contains(r.detail["redis reachable"], "server ") ||
		!strings.Contains(r.detail["rabbitmq reachable"], "server RabbitMQ") || !strings.Contains(r.detail["elasticsearch reachable"], "version ") {
		t.Error("a reachable check does not name the server's version")
	}
	// The privilege probe leaves nothing behind.
	var leftover string
	err := testenv.DB(t, cfg).QueryRow("SHOW TABLES LIKE '" + cfg.Namespace + "\\_doctor%'").Scan(&leftover)
	if err == nil {
		t.Errorf("the privilege probe left table %s behind", leftover)
	}

	// `chat doctor search` keeps working next to it, and anything else is a
	// usage error.
	if r := runDoctor(t, doctorEnv(cfg, nil), "search"); r.code != 0 || !strings.Contains(r.out, "all search checks passed") {
		t.Errorf("chat doctor search: exit %d", r.code)
	}
	if r := runDoctor(t, doctorEnv(cfg, nil), "everything"); r.code == 0 {
		t.Error("chat doctor everything: exit 0")
	}
}

// TestDoctorFindsFaults points each dependency in turn at a closed port, and
// the database at one that does not exist: the report names what failed and
// how to fix it, skips what depends on it, checks the rest, and exits 1 at
// once.
func TestDoctorFindsFaults(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	startWorker(t, cfg)
	closed := closedPort(t)
	deadDSN, _ := mysql.ParseDSN(cfg.MySQLDSN)
	deadDSN.Addr = closed
	missingDB, _ := mysql.ParseDSN(cfg.MySQLDSN)
	missingDB.DBName += "_missing"

	tests := []struct {
		name    string
		env     map[string]string
		failed  string // the check that fails
		says    string
		fix     string
		skipped []string
		healthy string // a check of another dependency that still passes
	}{
		{"Redis down", map[string]string{"CHAT_REDIS_URL": "redis://" + closed + "/0"},
			"redis reachable", closed, "CHAT_REDIS_URL", []string{"redis numbering epoch", "redis persistence"}, "mysql migrations"},
		{"RabbitMQ down", map[string]string{"CHAT_AMQP_URL": "amqp://guest:guest@" + closed + "/"},
			"rabbitmq reachable", closed, "CHAT_AMQP_URL", []string{"rabbitmq parked events", "rabbitmq queued events"}, "redis numbering epoch"},
		{"Elasticsearch down", map[string]string{"CHAT_ELASTICSEARCH_URL": "http://" + closed},
			"elasticsearch reachable", closed, "CHAT_ELASTICSEARCH_URL", []string{"elasticsearch mapping"}, "rabbitmq reachable"},
		{"MySQL down", map[string]string{"CHAT_MYSQL_DSN": deadDSN.FormatDSN()},
			"mysql reachable", closed, "CHAT_MYSQL_DSN", []string{"mysql database", "mysql privileges", "mysql migrations"}, "redis reachable"},
		{"no database", map[string]string{"CHAT_MYSQL_DSN": missingDB.FormatDSN()},
			"mysql database", missingDB.DBName + " does not exist", "chat migrate", []string{"mysql privileges", "mysql migrations"}, "mysql reachable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runDoctor(t, doctorEnv(cfg, tc.env))
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			if r.elapsed > 5*time.Second {
				t.Errorf("took %s; a refused connection should fail at once", r.elapsed)
			}
			if r.verdict[tc.failed] != "FAIL" || !strings.Contains(r.detail[tc.failed], tc.says) {
				t.Errorf("%s: %s %q; want FAIL saying %q", tc.failed, r.verdict[tc.failed], r.detail[tc.failed], tc.says)
			}
			if !regexp.MustCompile(`(?m)^FAIL .*\n +fix: .*` + regexp.QuoteMeta(tc.fix)).MatchString(r.out) {
				t.Errorf("no fix mentioning %q under the failure", tc.fix)
			}
			for _, s := range tc.skipped {
				if r.verdict[s] != "skip" {
					t.Errorf("%s: %q, want skip", s, r.verdict[s])
				}
			}
			if r.verdict[tc.healthy] != "ok" {
				t.Errorf("%s: %q, want ok: one dependency down must not stop the others' checks", tc.healthy, r.verdict[tc.healthy])
			}
			if n := strings.Count(r.out, "\nFAIL "); n != 1 {
				t.Errorf("%d failures, want 1", n)
			}
		})
	}
}

// TestDoctorTimesOut points every dependency at a server that accepts
// connections and never answers: each check gives up after its timeout, and
// doctor reports them all, at once rather than one after another.
func TestDoctorTimesOut(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	silent := silentServer(t)
	dsn, _ := mysql.ParseDSN(cfg.MySQLDSN)
	dsn.Addr = silent
	r := runDoctor(t, doctorEnv(cfg, map[string]string{
		"CHAT_MYSQL_DSN":         dsn.FormatDSN(),
		"CHAT_REDIS_URL":         "redis://" + silent + "/0",
		"CHAT_AMQP_URL":          "amqp://guest:guest@" + silent + "/",
		"CHAT_ELASTICSEARCH_URL": "http://" + silent,
	}))
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	if r.elapsed > doctorTimeout+3*time.Second {
		t.Errorf("took %s; each dependency should give up within %s, all at once", r.elapsed, doctorTimeout)
	}
	for _, check := range []string{"mysql reachable", "redis reachable", "rabbitmq reachable", "elasticsearch reachable"} {
		if r.verdict[check] != "FAIL" {
			t.Errorf("%s: %q, want FAIL", check, r.verdict[check])
		}
	}
}

// closedPort is a local address where nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentServer accepts connections and never says a word.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// TestDoctorWarnsOfClassicQueues: the queues of an older release still work,
// so doctor passes, but it warns that each lives on one node and says how
// to convert it.
func TestDoctorWarnsOfClassicQueues(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	testenv.ClassicQueues(t, cfg)
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	r := runDoctor(t, doctorEnv(cfg, nil))
	if strings.Contains(r.out, "FAIL  rabbitmq") {
		t.Error("a RabbitMQ check failed: classic queues still work")
	}
	for _, q := range []string{names.Store, names.DeadStore} {
		check := "rabbitmq queue " + q
		if r.verdict[check] != "WARN" || !strings.Contains(r.detail[check], "classic queue") {
			t.Errorf("%s: %s %q; want a warning of a classic queue", check, r.verdict[check], r.detail[check])
		}
	}
	if !strings.Contains(r.out, "run `chat migrate`") {
		t.Error("no advice on converting the classic queues")
	}
}
