package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/partition"
)

// TestScaleOutUnderFaults runs the system as it runs at scale, on one
// machine: 16 partitions, three `chat work` processes sharing them, a Redis
// Cluster and a three-node RabbitMQ cluster. Under a steady load of message
// creates it kills one worker with SIGKILL, pauses another past its leases
// (SIGSTOP, then SIGCONT), fails a Redis master over, and stops the broker
// node that leads the queues. Afterwards every create answered 201 reads back
// as written, each partition's positions run 1..head without a gap, no event
// id and no message number is stored twice, nothing was parked, and `chat
// verify` finds the read tables equal to a fold of the log.
//
//	make scale-test
func TestScaleOutUnderFaults(t *testing.T) {
	redisCluster := testenv.NewCluster(t)
	rabbit := testenv.StartRabbitCluster(t, 3)
	cfg := testenv.ConfigOn(t, redisCluster.URL, func(c *config.Config) {
		c.Partitions = 16
		c.AMQPURL = rabbit.URLs()
	})
	cfg.PublishTimeout = 3 * time.Second
	cfg.StorePrefetch = 128
	db := testenv.DB(t, cfg)

	api := startBinary(t, cfg)
	// A stream held on a serve process of its own, woken across processes
	// through the Redis Cluster, follows one chat through every fault.
	following := startBinaryCommand(t, cfg, "serve")
	workers := []*system{startBinaryCommand(t, cfg, "work"), startBinaryCommand(t, cfg, "work"), startBinaryCommand(t, cfg, "work")}
	table := partition.NewTable(db, cfg.Namespace)
	writers := func() (map[string]int, int) {
		list, err := table.List(context.Background())
		if err != nil {
			return nil, 0
		}
		owners, held := map[string]int{}, 0
		for _, s := range list {
			if s.Owner != "" && s.Left > 0 {
				owners[s.Owner]++
				held++
			}
		}
		return owners, held
	}
	testenv.Eventually(t, 30*time.Second, "three workers sharing the 16 partitions", func() bool {
		owners, held := writers()
		return held == 16 && len(owners) == 3
	})

	// Applications spread over the partitions and the Redis masters.
	const apps = 24
	var chats []string
	for i := range apps {
		token := api.must(t, 201, "POST", "/applications", map[string]any{"name": fmt.Sprint("app ", i)}).object(t)["token"].(string)
		api.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
		chats = append(chats, "/applications/"+token+"/chats/1/messages")
	}

	followed := newFollower(t, following, chats[0]+"/stream")

	type created struct {
		chat   string
		number int64
		body   string
	}
	var (
		mu      sync.Mutex
		ok      []created
		lastOK  = map[string]time.Time{} // by chat
		refused = map[int]int{}
		stop    = make(chan struct{})
		load    sync.WaitGroup
	)
	for g := range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				chat := chats[(g*7+i)%len(chats)]
				body := fmt.Sprintf("load %d/%d", g, i)
				r := api.call(t, http.MethodPost, chat, map[string]any{"body": body})
				mu.Lock()
				if r.Status == http.StatusCreated {
					var v struct{ Number int64 }
					r.json(t, &v)
					ok = append(ok, created{chat, v.Number, body})
					lastOK[chat] = time.Now()
				} else {
					refused[r.Status]++
				}
				mu.Unlock()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(ok) }
	flowing := func(what string) {
		t.Helper()
		n := count()
		testenv.Eventually(t, 90*time.Second, "creates answered 201 "+what, func() bool { return count() >= n+100 })
	}
	flowing("at first")

	t.Log("kill -9 a worker")
	if err := workers[0].proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	flowing("after a worker was killed")

	t.Log("pause a worker past its leases")
	if err := workers[1].proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * time.Second)
	if err := workers[1].proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	flowing("after a worker was paused and resumed")

	t.Log("fail a Redis master over")
	refusals := func() int { mu.Lock(); defer mu.Unlock(); return refused[http.StatusServiceUnavailable] }
	before := refusals()
	redisCluster.Failover(t)
	// The new master's slots are refused until they are rebuilt from the
	// log, which waits for each partition's queue to drain once: under the
	// load, not after it.
	testenv.Eventually(t, 30*time.Second, "the failed-over master's slots refused", func() bool { return refusals() > before })
	refusing := time.Now()
	testenv.Eventually(t, 60*time.Second, "every chat answered 201 again after the failover, under load", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range chats {
			if !lastOK[c].After(refusing) {
				return false
			}
		}
		return true
	})
	t.Logf("every chat served again %s after the slots were refused", time.Since(refusing).Round(100*time.Millisecond))

	leader, err := rabbit.Leader(catalog.New(cfg.Namespace).StoreQueue(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stop RabbitMQ node %s", leader.Name)
	rabbit.Stop(leader)
	flowing("after a broker node was lost")

	close(stop)
	load.Wait()
	mu.Lock()
	t.Logf("%d creates answered 201; refused: %v", len(ok), refused)
	mu.Unlock()

	// The workers left hold every partition; the API is ready again (the
	// numbering of the failed-over master's slots is rebuilt).
	testenv.Eventually(t, 60*time.Second, "the two workers left holding every partition", func() bool {
		owners, held := writers()
		return held == 16 && len(owners) == 2
	})
	testenv.Eventually(t, 90*time.Second, "the numbering state whole again", func() bool {
		r := api.call(t, http.MethodGet, "/readyz", nil)
		return r.Status == http.StatusOK && r.object(t)["checks"].(map[string]any)["numbering"] == "ok"
	})

	for _, c := range ok {
		r := api.eventually(t, fmt.Sprintf("%s/%d", c.chat, c.number), func(r response) bool { return r.Status == http.StatusOK })
		if got := r.object(t)["body"]; got != c.body {
			t.Errorf("%s/%d reads %q, want %q", c.chat, c.number, got, c.body)
		}
	}
	checkLog(t, db, cfg)
	var want []int64
	for _, c := range ok {
		if c.chat == chats[0] {
			want = append(want, c.number)
		}
	}
	followed.got(t, want)
	stats, err := broker.QueueStats(context.Background(), cfg.AMQPURL, catalog.New(cfg.Namespace).DeadQueue())
	if err != nil || stats[0].Messages != 0 {
		t.Errorf("parked events: %v, %v", stats, err)
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"verify", "--no-search"}, doctorEnv(cfg, nil), &out, &out); code != 0 {
		t.Errorf("chat verify: exit %d\n%s", code, out.String())
	}
}

// checkLog checks the event log itself: each partition's positions run
// 1..head without a gap and match its head, no event id is stored twice, and
// no stream version (a message number) is stored twice.
func checkLog(t *testing.T, db *sql.DB, cfg config.Config) {
	t.Helper()
	names := catalog.New(cfg.Namespace)
	rows, err := db.Query("SELECT p.partition_id, p.head, COUNT(e.position), COALESCE(MIN(e.position), 0), COALESCE(MAX(e.position), 0) FROM " +
		names.Partitions() + " p LEFT JOIN " + names.Events() + " e ON e.partition_id = p.partition_id GROUP BY p.partition_id, p.head")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	total, used := int64(0), 0
	for rows.Next() {
		var p, head, n, lo, hi int64
		if err := rows.Scan(&p, &head, &n, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if n != head || hi != head || (n > 0 && lo != 1) {
			t.Errorf("partition %d: head %d, %d events at positions %d..%d: want 1..head, no gap", p, head, n, lo, hi)
		}
		total += n
		if n > 0 {
			used++
		}
	}
	var events, ids, streams int64
	if err := db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT event_id), COUNT(DISTINCT stream_id, stream_version) FROM "+names.Events()).Scan(&events, &ids, &streams); err != nil {
		t.Fatal(err)
	}
	if ids != events || streams != events {
		t.Errorf("%d events, %d distinct ids, %d distinct stream versions", events, ids, streams)
	}
	t.Logf("%d events in %d partitions", total, used)
}

// follower holds a stream for the rest of a test, resuming with
// Last-Event-ID whenever it ends (a client's EventSource does the same),
// and counts the messages it is sent.
type follower struct {
	mu   sync.Mutex
	seen map[int64]int
	ends int
}

func newFollower(t *testing.T, s *system, path string) *follower {
	f := &follower{seen: map[int64]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		last := "0" // from the chat's start, though it opens late
		for ctx.Err() == nil {
			last = f.read(ctx, s.URL+path, last)
			f.mu.Lock()
			f.ends++
			f.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return f
}

// read follows one connection of the stream from last, and returns the
// last event id it was sent.
func (f *follower) read(ctx context.Context, url, last string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return last
	}
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return last
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return last
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var name, id string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			name = ""
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: ") && name == "message":
			var m struct{ Number int64 }
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m) == nil {
				f.mu.Lock()
				f.seen[m.Number]++
				f.mu.Unlock()
			}
			last = id
		}
	}
	return last
}

// got checks that the stream was sent every message of want once, and no
// message twice.
func (f *follower) got(t *testing.T, want []int64) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("the stream sent the %d messages answered 201", len(want)), func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, n := range want {
			if f.seen[n] == 0 {
				return false
			}
		}
		return true
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	for n, times := range f.seen {
		if times > 1 {
			t.Errorf("the stream sent message %d %d times", n, times)
		}
	}
	t.Logf("the stream sent %d messages over %d connections", len(f.seen), f.ends+1)
}
