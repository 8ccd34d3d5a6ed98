package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestFaultLogSummarises(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	f := newFaultLog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), 10*time.Second)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.now = func() time.Time { return clock }

	// 30 s of a broker outage at 100 refused requests a second, with the
	// Redis outage overlapping it for one second, then a quiet interval.
	for i := range 3000 {
		clock = clock.Add(10 * time.Millisecond)
		f.failed("unavailable:rabbitmq", slog.LevelError, "dependency unavailable", "no connection")
		if i >= 1000 && i < 1100 {
			f.failed("unavailable:redis", slog.LevelError, "dependency unavailable", "dial refused")
		}
		f.settle()
	}
	clock = clock.Add(11 * time.Second)
	f.settle()
	f.settle()

	type line struct {
		Level, Msg, Fault string
		Failed            int64
		Total             int64 `json:"failed_total"`
	}
	var lines []line
	for _, raw := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		lines = append(lines, l)
	}
	count := func(fault, msg string) (n int, failed, total int64) {
		for _, l := range lines {
			if l.Fault == fault && l.Msg == msg {
				n++
				failed += l.Failed
				total = max(total, l.Total)
			}
		}
		return n, failed, total
	}
	if n, _, _ := count("unavailable:rabbitmq", "dependency unavailable"); n != 1 {
		t.Errorf("broker outage started %d times in the log, want 1", n)
	}
	if n, failed, _ := count("unavailable:rabbitmq", "failures go on"); n != 2 || failed < 1900 {
		t.Errorf("broker outage: %d summaries counting %d failures, want 2 counting ~2000", n, failed)
	}
	if n, _, total := count("unavailable:rabbitmq", "failures stopped"); n != 1 || total != 3000 {
		t.Errorf("broker outage: %d end lines with total %d, want 1 with 3000", n, total)
	}
	if n, _, total := count("unavailable:redis", "failures stopped"); n != 1 || total != 100 {
		t.Errorf("Redis outage: %d end lines with total %d, want 1 with 100", n, total)
	}
	if len(lines) > 8 {
		t.Errorf("%d log lines for 3,100 failures:\n%s", len(lines), buf.String())
	}
	if f.open.Load() {
		t.Error("faults still open after a quiet interval")
	}
}
