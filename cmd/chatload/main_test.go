package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func msList(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func msRange(lo, hi int) []time.Duration {
	var out []time.Duration
	for m := lo; m <= hi; m++ {
		out = append(out, time.Duration(m)*time.Millisecond)
	}
	return out
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		samples []time.Duration
		want    summary
	}{
		{"empty", nil, summary{}},
		{"one", msList(7), summary{Count: 1, Min: 7 * ms, Mean: 7 * ms, P50: 7 * ms, P90: 7 * ms, P99: 7 * ms, P999: 7 * ms, Max: 7 * ms}},
		{"two", msList(10, 20), summary{Count: 2, Min: 10 * ms, Mean: 15 * ms, P50: 10 * ms, P90: 20 * ms, P99: 20 * ms, P999: 20 * ms, Max: 20 * ms}},
		{"unsorted", msList(5, 1, 4, 2, 3), summary{Count: 5, Min: 1 * ms, Mean: 3 * ms, P50: 3 * ms, P90: 5 * ms, P99: 5 * ms, P999: 5 * ms, Max: 5 * ms}},
		{"1..100", msRange(1, 100), summary{Count: 100, Min: 1 * ms, Mean: 50500 * time.Microsecond, P50: 50 * ms, P90: 90 * ms, P99: 99 * ms, P999: 100 * ms, Max: 100 * ms}},
		{"1..1000 exact ranks", msRange(1, 1000), summary{Count: 1000, Min: 1 * ms, Mean: 500500 * time.Microsecond, P50: 500 * ms, P90: 900 * ms, P99: 990 * ms, P999: 999 * ms, Max: 1000 * ms}},
		{"one outlier in 1000", append(msList(1000), msRange(1, 999)...), summary{Count: 1000, Min: 1 * ms, Mean: 500500 * time.Microsecond, P50: 500 * ms, P90: 900 * ms, P99: 990 * ms, P999: 999 * ms, Max: 1000 * ms}},
		{"ties", msList(3, 3, 3, 3, 9), summary{Count: 5, Min: 3 * ms, Mean: 4200 * time.Microsecond, P50: 3 * ms, P90: 9 * ms, P99: 9 * ms, P999: 9 * ms, Max: 9 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.samples); got != tt.want {
				t.Errorf("summarize =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestSeriesKeepsCountAndMaxPastItsLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		n     int
	}{
		{"under the limit", 100, 50},
		{"at the limit", 100, 100},
		{"far past the limit", 100, 100_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeries(tt.limit)
			for i := 1; i <= tt.n; i++ {
				s.add(time.Duration(i) * time.Microsecond)
			}
			if got, want := len(s.samples), min(tt.n, tt.limit); got != want {
				t.Errorf("kept %d samples, want %d", got, want)
			}
			sum := s.summary()
			if sum.Count != int64(tt.n) {
				t.Errorf("count = %d, want %d", sum.Count, tt.n)
			}
			if want := time.Duration(tt.n) * time.Microsecond; sum.Max != want {
				t.Errorf("max = %v, want %v", sum.Max, want)
			}
			// A uniform sample of 1..n has its median near n/2.
			if tt.n > tt.limit {
				mid := float64(tt.n) / 2 * float64(time.Microsecond)
				if got := float64(sum.P50); got < 0.7*mid || got > 1.3*mid {
					t.Errorf("p50 = %v, want near %v", sum.P50, time.Duration(mid))
				}
			}
		})
	}
}

func TestScheduleAt(t *testing.T) {
	start := time.Unix(1000, 0)
	tests := []struct {
		rate float64
		i    int64
		want time.Duration
	}{
		{1000, 0, 0},
		{1000, 1, time.Millisecond},
		{1000, 3000, 3 * time.Second},
		{3, 1, 333333333 * time.Nanosecond},
		{3, 3, time.Second},
		{5000, 300_000, 60 * time.Second},
		{0.5, 2, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%g/s #%d", tt.rate, tt.i), func(t *testing.T) {
			if got := (schedule{start, tt.rate}).at(tt.i).Sub(start); got != tt.want {
				t.Errorf("at(%d) = start+%v, want start+%v", tt.i, got, tt.want)
			}
		})
	}
}

// fakeClock advances only when slept on: by the time asked plus whatever
// oversleep returns for that call.
type fakeClock struct {
	now       time.Time
	calls     int
	oversleep func(call int) time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.calls++
	c.now = c.now.Add(max(d, 0))
	if c.oversleep != nil {
		c.now = c.now.Add(c.oversleep(c.calls))
	}
	return nil
}

func TestScheduleRun(t *testing.T) {
	tests := []struct {
		name      string
		rate      float64
		length    time.Duration
		oversleep func(call int) time.Duration
		cancelAt  int64 // cancel the context after this many emits; 0: never
		wantCount int64
		maxLate   time.Duration // the most an emit may come after its due time
		maxSleeps int           // 0: no bound
	}{
		{name: "exact sleeps", rate: 1000, length: time.Second, wantCount: 1000},
		{name: "fractional interval", rate: 3000, length: 2 * time.Second, wantCount: 6000},
		{name: "slow rate", rate: 2, length: 10 * time.Second, wantCount: 20},
		{
			name: "every sleep 3ms late: catch up in batches", rate: 1000, length: time.Second,
			oversleep: func(int) time.Duration { return 3 * time.Millisecond },
			wantCount: 1000, maxLate: 3 * time.Millisecond, maxSleeps: 300,
		},
		{
			name: "one 250ms stall: no request skipped", rate: 1000, length: time.Second,
			oversleep: func(call int) time.Duration {
				if call == 100 {
					return 250 * time.Millisecond
				}
				return 0
			},
			wantCount: 1000, maxLate: 250 * time.Millisecond,
		},
		{
			name: "stall past the end: nothing due after end", rate: 100, length: time.Second,
			oversleep: func(call int) time.Duration {
				if call == 50 {
					return 5 * time.Second
				}
				return 0
			},
			wantCount: 100, maxLate: 5 * time.Second,
		},
		{name: "canceled", rate: 1000, length: time.Second, cancelAt: 42, wantCount: 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			start := time.Unix(1_700_000_000, 0)
			clk := &fakeClock{now: start, oversleep: tt.oversleep}
			s := schedule{start: start, rate: tt.rate}
			end := start.Add(tt.length)

			var emitted int64
			n := s.run(ctx, end, clk, func(seq int64, due time.Time) {
				if seq != emitted {
					t.Fatalf("emitted #%d after %d requests; want them in order", seq, emitted)
				}
				if !due.Equal(s.at(seq)) {
					t.Errorf("#%d due at %v, want %v", seq, due.Sub(start), s.at(seq).Sub(start))
				}
				if !due.Before(end) {
					t.Errorf("#%d due at %v, at or past the end %v", seq, due.Sub(start), tt.length)
				}
				if late := clk.Now().Sub(due); late < 0 || late > tt.maxLate {
					t.Errorf("#%d emitted %v after its due time, want within [0, %v]", seq, late, tt.maxLate)
				}
				emitted++
				if emitted == tt.cancelAt {
					cancel()
				}
			})
			if n != tt.wantCount || emitted != tt.wantCount {
				t.Errorf("run returned %d and emitted %d requests, want %d", n, emitted, tt.wantCount)
			}
			if tt.maxSleeps > 0 && clk.calls > tt.maxSleeps {
				t.Errorf("slept %d times, want at most %d", clk.calls, tt.maxSleeps)
			}
		})
	}
}

func TestErrorKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&apiError{Status: 503, Code: "overloaded"}, "http 503 overloaded"},
		{&apiError{Status: 502}, "http 502"},
		{fmt.Errorf("post: %w", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("post: %w", context.Canceled), "canceled"},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "connection refused"},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "connection reset"},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)}, "no local port"},
		{fmt.Errorf("post: %w", io.ErrUnexpectedEOF), "connection closed"},
		{errors.New("something else"), "other"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := errorKind(tt.err); got != tt.want {
				t.Errorf("errorKind(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		check   func(config) bool
	}{
		{nil, "", func(c config) bool {
			return c.url == "http://127.0.0.1:8080" && c.rate == 0 && c.duration == time.Minute && c.warmup == 5*time.Second &&
				c.concurrency == 256 && c.apps == 4 && c.chats == 16 && c.bodySize == 64 && c.lagSample == 0.02 && !c.json
		}},
		{[]string{"-rate", "3000", "-duration", "15s", "-json"}, "", func(c config) bool {
			return c.rate == 3000 && c.duration == 15*time.Second && c.json
		}},
		{[]string{"-rate", "-1"}, "-rate", nil},
		{[]string{"-lag-sample", "1.5"}, "-lag-sample", nil},
		{[]string{"-concurrency", "0"}, "-concurrency", nil},
		{[]string{"-url", "localhost:8080"}, "-url", nil},
		{[]string{"extra"}, "unexpected", nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !tt.check(c) {
				t.Errorf("config = %+v", c)
			}
		})
	}
}

func TestMessageBody(t *testing.T) {
	for _, size := range []int{1, 64, 4096} {
		b := string(messageBody(size))
		if want := len(`{"body":""}`) + size; len(b) != want {
			t.Errorf("messageBody(%d) has %d bytes, want %d", size, len(b), want)
		}
		if !strings.HasPrefix(b, `{"body":"`) || !strings.HasSuffix(b, `"}`) {
			t.Errorf("messageBody(%d) = %.40q…, not a body object", size, b)
		}
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine([]string{"-rate", "1000", "-url", "http://h:1/a b"})
	if want := `chatload -rate 1000 -url "http://h:1/a b"`; got != want {
		t.Errorf("commandLine = %s, want %s", got, want)
	}
}
