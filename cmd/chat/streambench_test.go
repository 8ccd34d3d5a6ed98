package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
)

// TestStreamFigures measures the streams' figures on this machine (README,
// Measuring):
//
//	CHAT_STREAM_BENCH=1 go test -run TestStreamFigures -v -timeout 10m ./cmd/chat
//
// idle: 10,000 streams held open on one `chat serve` (over 100 chats), and
// the resident memory each costs; busy: 1,000 streams on one chat of another
// `chat serve` while 200 messages a second are created through a third, and
// the time from each create's 201 to its event at every stream (p50, p99,
// max), with every stream checked to get every message once.
func TestStreamFigures(t *testing.T) {
	if os.Getenv("CHAT_STREAM_BENCH") == "" {
		t.Skip("set CHAT_STREAM_BENCH=1 to measure the streams' figures")
	}
	cfg := testenv.Config(t)
	t.Setenv("CHAT_HTTP_MAX_CONNS_PER_CLIENT", "0")
	t.Setenv("CHAT_STREAM_MAX", "20000")
	t.Setenv("CHAT_MYSQL_MAX_CONNS", "40")
	// Idle streams re-read every 15–30 s here (3 s by default): see README.
	t.Setenv("CHAT_STREAM_RECHECK", "30s")
	startBinaryCommand(t, cfg, "work")
	idle := startBinary(t, cfg)
	busy := startBinary(t, cfg)
	posting := startBinary(t, cfg)

	token := posting.must(t, 201, "POST", "/applications", map[string]any{"name": "figures"}).object(t)["token"].(string)
	const chats = 100
	for range chats {
		posting.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	}
	idle.eventually(t, fmt.Sprintf("/applications/%s/chats/%d", token, chats), nil)

	inUse := func() float64 {
		return metric(t, idle, "go_memstats_heap_inuse_bytes") + metric(t, idle, "go_memstats_stack_inuse_bytes")
	}
	before, goBefore := metric(t, idle, "process_resident_memory_bytes"), inUse()
	idleStreams := benchCount("CHAT_STREAM_BENCH_IDLE", 10000)
	conns := make([]net.Conn, 0, idleStreams)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range idleStreams {
		c := rawStream(t, idle, fmt.Sprintf("/applications/%s/chats/%d/messages/stream", token, i%chats+1))
		conns = append(conns, c)
	}
	testenv.Eventually(t, time.Minute, "the idle streams open", func() bool { return metric(t, idle, "chat_streams_open") == float64(idleStreams) })
	time.Sleep(5 * time.Second)
	after, goAfter := metric(t, idle, "process_resident_memory_bytes"), inUse()
	t.Logf("idle: stacks in use %.1f MiB", metric(t, idle, "go_memstats_stack_inuse_bytes")/(1<<20))
	t.Logf("idle: Go heap and stacks in use %.1f MiB before, %.1f MiB after: %.1f KiB per stream",
		goBefore/(1<<20), goAfter/(1<<20), (goAfter-goBefore)/float64(max(idleStreams, 1))/1024)
	t.Logf("idle: %d streams, resident memory %.1f MiB before, %.1f MiB after: %.1f KiB per stream",
		idleStreams, before/(1<<20), after/(1<<20), (after-before)/float64(max(idleStreams, 1))/1024)

	busyFigures(t, busy, posting, token)
}

// rawStream opens a stream on a bare connection and reads up to its first
// event; the caller holds the connection.
func rawStream(t *testing.T, s *system, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	return c
}

// metric reads one unlabelled metric from a process.
func metric(t *testing.T, s *system, name string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(string(s.must(t, 200, "GET", "/metrics", nil).Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// busyFigures holds 1,000 streams of one chat on busy and creates 200
// messages a second for 10 s through posting.
func busyFigures(t *testing.T, busy, posting *system, token string) {
	streams := benchCount("CHAT_STREAM_BENCH_BUSY", 1000)
	if streams == 0 {
		return
	}
	const rate, seconds = 200, 10
	total := rate * seconds
	path := "/applications/" + token + "/chats/1/messages"
	var (
		mu       sync.Mutex
		answered = make(map[int64]time.Time, total)
		got      = make([][]time.Duration, streams)
		seen     = make([]map[int64]int, streams)
		wg       sync.WaitGroup
	)
	arrivals := make([][]struct {
		n  int64
		at time.Time
	}, streams)
	for i := range streams {
		c := rawStream(t, busy, path+"/stream")
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd := bufio.NewReaderSize(c, 64<<10)
			for {
				line, err := rd.ReadSlice('\n')
				if err != nil {
					return
				}
				rest, ok := bytes.CutPrefix(line, []byte(`data: {"number":`))
				if !ok {
					continue
				}
				end := bytes.IndexByte(rest, ',')
				n, _ := strconv.ParseInt(string(rest[:end]), 10, 64)
				arrivals[i] = append(arrivals[i], struct {
					n  int64
					at time.Time
				}{n, time.Now()})
				if len(arrivals[i]) == total {
					return
				}
			}
		}()
	}
	testenv.Eventually(t, time.Minute, "the busy streams open", func() bool { return metric(t, busy, "chat_streams_open") >= float64(streams) })

	tick := time.NewTicker(time.Second / rate)
	work := make(chan struct{}, total)
	var posters sync.WaitGroup
	for range 32 {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for range work {
				r := posting.call(t, http.MethodPost, path, map[string]any{"body": "busy"})
				if r.Status != http.StatusCreated {
					t.Errorf("create: %d %s", r.Status, r.Body)
					continue
				}
				var m struct{ Number int64 }
				r.json(t, &m)
				mu.Lock()
				answered[m.Number] = time.Now()
				mu.Unlock()
			}
		}()
	}
	cpu := func() string {
		return fmt.Sprintf("serving the streams %.1f s, creating %.1f s", metric(t, busy, "process_cpu_seconds_total"), metric(t, posting, "process_cpu_seconds_total"))
	}
	cpuBefore, clientBefore := cpu(), clientCPU()
	began := time.Now()
	for range total {
		<-tick.C
		work <- struct{}{}
	}
	close(work)
	posters.Wait()
	tick.Stop()
	t.Logf("busy: %d creates in %s; CPU of the processes before %s, after %s", len(answered), time.Since(began).Round(time.Millisecond), cpuBefore, cpu())
	t.Logf("busy: server side, occurred-at → written: %s", serverSide(t, busy))
	defer func() { t.Logf("busy: CPU of the test's clients %.1f s", clientCPU()-clientBefore) }()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Errorf("not every stream got every message within 30 s")
	}
	var all []time.Duration
	missing, doubled := 0, 0
	for i := range streams {
		seen[i] = map[int64]int{}
		for _, a := range arrivals[i] {
			seen[i][a.n]++
			if at, ok := answered[a.n]; ok {
				got[i] = append(got[i], a.at.Sub(at))
			}
		}
		for n := range answered {
			switch seen[i][n] {
			case 0:
				missing++
			case 1:
			default:
				doubled++
			}
		}
		all = append(all, got[i]...)
	}
	slices.Sort(all)
	if len(all) == 0 {
		t.Fatal("no deliveries")
	}
	q := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))] }
	t.Logf("busy: %d streams × %d messages: 201 → delivered p50 %s, p99 %s, max %s; %d deliveries missing, %d doubled",
		streams, len(answered), q(.5).Round(time.Millisecond), q(.99).Round(time.Millisecond), all[len(all)-1].Round(time.Millisecond), missing, doubled)
}

// serverSide summarises chat_stream_delivery_seconds: the share of
// deliveries within each bucket up to 1 s.
func serverSide(t *testing.T, s *system) string {
	t.Helper()
	var out []string
	for line := range strings.SplitSeq(string(s.must(t, 200, "GET", "/metrics", nil).Body), "\n") {
		if rest, ok := strings.CutPrefix(line, `chat_stream_delivery_seconds_bucket{le="`); ok {
			le, count, _ := strings.Cut(rest, `"} `)
			out = append(out, le+"s:"+count)
		}
	}
	return strings.Join(out, " ")
}

// benchCount reads a count from the environment, or def.
func benchCount(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// clientCPU is the CPU time this test process has used, in seconds.
func clientCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
