package main

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/internal/testenv"
)

// sample finds a series in a Prometheus text exposition, by its name and
// labels as rendered (`chat_queue_messages{queue="dead"}`).
func sample(exposition, series string) (float64, bool) {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, found := strings.CutPrefix(line, series+" "); found {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TestMetrics scrapes a running process: the queue depths and the Redis pool
// figures are there, with values that follow what happened.
func TestMetrics(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	s := start(t, cfg, true, true)
	scrape := func() string {
		t.Helper()
		r := s.must(t, 200, "GET", "/metrics", nil)
		return string(r.Body)
	}
	series := func(text, name string) float64 {
		t.Helper()
		v, found := sample(text, name)
		if !found {
			t.Fatalf("/metrics has no %s", name)
		}
		return v
	}

	s.must(t, 201, "POST", "/applications", map[string]any{"name": "measured"})
	text := scrape()
	if v := series(text, "chat_queue_up"); v != 1 {
		t.Errorf("chat_queue_up %v, want 1", v)
	}
	if v := series(text, `chat_queue_messages{queue="dead"}`); v != 0 {
		t.Errorf("dead queue %v before anything was parked, want 0", v)
	}
	if v := series(text, `chat_queue_messages{queue="store"}`); v < 0 || v > 1 {
		t.Errorf("store queue %v with at most one event published, want 0 or 1", v)
	}
	if conns, idle := series(text, "chat_redis_pool_connections"), series(text, "chat_redis_pool_idle_connections"); conns < 1 || idle > conns {
		t.Errorf("Redis pool: %v connections, %v idle, after a command used Redis", conns, idle)
	}
	if uses := series(text, "chat_redis_pool_hits_total") + series(text, "chat_redis_pool_misses_total"); uses < 1 {
		t.Errorf("Redis pool: %v hits and misses after a command used Redis", uses)
	}
	if v := series(text, "chat_redis_pool_max_connections"); v != 64 {
		t.Errorf("chat_redis_pool_max_connections %v, want 64", v)
	}
	for _, name := range []string{"chat_redis_pool_timeouts_total", "chat_redis_pool_waits_total", "chat_redis_pool_wait_seconds_total", "chat_redis_pool_stale_connections_total"} {
		series(text, name)
	}
	for _, typ := range []string{"# TYPE chat_queue_messages gauge", "# TYPE chat_redis_pool_hits_total counter", "# TYPE chat_redis_pool_connections gauge"} {
		if !strings.Contains(text, typ) {
			t.Errorf("/metrics lacks %q", typ)
		}
	}

	// An event the writer cannot decode is parked: the dead queue's gauge
	// shows it within the collector's cache period.
	raw, err := wamqp.NewPublisher(testenv.Watermill(t, cfg, 0), watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	undecodable := message.NewMessage("not-a-uuid", []byte("{"))
	undecodable.Metadata.Set("event_type", "MessageCreated")
	if err := raw.Publish(broker.PartitionTopic(0), undecodable); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, `chat_queue_messages{queue="dead"} 1`, func() bool {
		v, found := sample(scrape(), `chat_queue_messages{queue="dead"}`)
		return found && v == 1
	})
}

// TestQueueCollector checks that the queue depths are asked for once per
// cache period however often and however concurrently they are scraped,
// and that a broker that is down or does not answer costs a scrape at most
// the collector's timeout and leaves the depths out.
func TestQueueCollector(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	names := broker.NamesFor(cfg.Namespace, cfg.Partitions)
	amqpURL, _ := url.Parse(cfg.AMQPURL)
	g := newGate(t, amqpURL.Host)
	amqpURL.Host = g.Addr()

	const timeout, ttl = time.Second, 400 * time.Millisecond
	reg := prometheus.NewRegistry()
	reg.MustRegister(newQueueCollector(amqpURL.String(), names, timeout, ttl))
	scrape := func() (string, time.Duration) {
		began := time.Now()
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("scrape answered %d: %s", rec.Code, rec.Body)
		}
		return rec.Body.String(), time.Since(began)
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text, _ := scrape()
			if v, found := sample(text, `chat_queue_messages{queue="store"}`); !found || v != 0 {
				t.Errorf("store queue: %v, %v; want 0", v, found)
			}
		}()
	}
	wg.Wait()
	if n := g.Dials(); n != 1 {
		t.Errorf("8 scrapes at once connected to RabbitMQ %d times, want once", n)
	}
	time.Sleep(ttl)
	scrape()
	if n := g.Dials(); n != 2 {
		t.Errorf("a scrape after the cache period: %d connections in all, want 2", n)
	}

	// A broker that takes connections and never answers.
	g.Hold()
	defer g.Release()
	time.Sleep(ttl)
	text, took := scrape()
	if took > timeout+time.Second {
		t.Errorf("a scrape with RabbitMQ silent took %s; the collector's timeout is %s", took, timeout)
	}
	if v, found := sample(text, "chat_queue_up"); !found || v != 0 {
		t.Errorf("chat_queue_up %v (%v) with RabbitMQ silent, want 0", v, found)
	}
	if _, found := sample(text, `chat_queue_messages{queue="dead"}`); found {
		t.Error("a depth is reported though RabbitMQ could not be asked")
	}
	// The failure is remembered too: the next scrape does not try again.
	dials := g.Dials()
	if _, took := scrape(); took > 100*time.Millisecond || g.Dials() != dials {
		t.Errorf("a scrape within the cache period after a failure took %s and dialled %d times", took, g.Dials()-dials)
	}
}

// TestRequestMetricsAreBounded sends requests with made-up methods to
// made-up paths: the request histogram's series stay within a closed set of
// labels, so /metrics does not grow with what clients send.
func TestRequestMetricsAreBounded(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, false)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	word := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	const lower, upper = "abcdefghijklmnopqrstuvwxyz0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	segment := func() string { return word(lower, 1+rng.IntN(12)) + url.PathEscape(word("?é/ #", 1)) }
	// Paths that match no route: at the top, and below the prefixes of
	// nested routes (where the router knows only part of a pattern).
	shapes := []func() string{
		func() string { return "/" + segment() },
		func() string { return "/" + segment() + "/" + segment() + "?" + word(lower, 3) + "=" + word(lower, 3) },
		func() string { return "/applications/" + segment() + "/" + segment() + "/" + segment() },
		func() string { return "/applications/x/chats/1/messages/" + segment() + "/" + segment() },
	}
	known := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	madeUp := func() string { return word(upper, 3+rng.IntN(8)) }
	series := func() []string {
		t.Helper()
		var out []string
		for _, line := range strings.Split(string(s.must(t, 200, "GET", "/metrics", nil).Body), "\n") {
			if strings.HasPrefix(line, "chat_http_request_seconds") {
				out = append(out, line)
			}
		}
		return out
	}

	series()
	// Every method on every shape once: each label set there is to meet.
	for _, shape := range shapes {
		for _, m := range append(known, madeUp()) {
			s.call(t, m, shape(), nil)
		}
	}
	before := series()
	for range 300 {
		m := madeUp()
		if rng.IntN(3) == 0 {
			m = known[rng.IntN(len(known))]
		}
		s.call(t, m, shapes[rng.IntN(len(shapes))](), nil)
	}
	after := series()
	if len(after) != len(before) {
		t.Errorf("300 requests with made-up methods and paths took /metrics from %d to %d request-histogram lines", len(before), len(after))
	}
	label := regexp.MustCompile(`(route|method)="([^"]*)"`)
	methods := map[string]bool{"other": true}
	for _, m := range known {
		methods[m] = true
	}
	reported := map[string]bool{}
	for _, line := range after {
		for _, l := range label.FindAllStringSubmatch(line, -1) {
			bad := l[1] == "method" && !methods[l[2]] || l[1] == "route" && l[2] != "unmatched" && l[2] != "/metrics"
			if bad && !reported[l[0]] {
				reported[l[0]] = true
				t.Errorf("label %s is outside the closed set for requests that matched no route", l[0])
			}
		}
	}
}
