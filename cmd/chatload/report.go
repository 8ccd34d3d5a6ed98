package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is the summary printed at the end of a run.
type report struct {
	Command     string           `json:"command"`
	Machine     machine          `json:"machine"`
	Mode        string           `json:"mode"`
	TargetRate  float64          `json:"target_rate,omitempty"`
	Concurrency int              `json:"concurrency"`
	Chats       int              `json:"chats"`
	BodySize    int              `json:"body_size"`
	WarmupS     float64          `json:"warmup_seconds"`
	WindowS     float64          `json:"window_seconds"`
	Requests    int64            `json:"requests"`
	Created     int64            `json:"created"`
	Failed      int64            `json:"failed"`
	Dropped     int64            `json:"dropped"`
	Errors      map[string]int64 `json:"errors"`
	Throughput  float64          `json:"throughput_per_second"`
	Latency     distribution     `json:"latency_ms"`
	ServiceTime distribution     `json:"service_time_ms"`
	Lag         *lagReport       `json:"lag_ms,omitempty"`
	Probe       *lagReport       `json:"probe_ms,omitempty"`
	CPU         []cpuUse         `json:"cpu,omitempty"`
	Readable    *readableResult  `json:"readable,omitempty"`
}

type machine struct {
	CPUs int    `json:"cpus"`
	OS   string `json:"os"`
	Arch string `json:"arch"`
	Go   string `json:"go"`
}

type lagReport struct {
	distribution
	Polls     int64            `json:"polls"`
	Timeouts  int64            `json:"timeouts"`
	Skipped   int64            `json:"skipped"`
	Abandoned int64            `json:"abandoned"`
	Errors    map[string]int64 `json:"errors"`
}

// distribution is a summary in milliseconds.
type distribution struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func distributionOf(s summary) distribution {
	return distribution{Count: s.Count, Mean: ms(s.Mean), P50: ms(s.P50), P90: ms(s.P90), P99: ms(s.P99), P999: ms(s.P999), Max: ms(s.Max)}
}

func newReport(cfg config, args []string, res loadResult) report {
	r := report{
		Command:     commandLine(args),
		Machine:     machine{runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version()},
		Mode:        "closed",
		Concurrency: cfg.concurrency,
		Chats:       cfg.apps * cfg.chats,
		BodySize:    cfg.bodySize,
		WarmupS:     cfg.warmup.Seconds(),
		WindowS:     res.Window.Seconds(),
		Requests:    res.Sent,
		Created:     res.Created,
		Failed:      res.Sent - res.Created,
		Dropped:     res.Dropped,
		Errors:      res.Errors,
		Latency:     distributionOf(res.Latency),
		ServiceTime: distributionOf(res.Service),
	}
	if cfg.rate > 0 {
		r.Mode, r.TargetRate = "open", cfg.rate
	}
	if res.Window > 0 {
		r.Throughput = float64(res.Created) / res.Window.Seconds()
	}
	r.Lag = lagReportOf(res.Lag)
	r.Probe = lagReportOf(res.Probe)
	r.CPU = res.CPU
	r.Readable = res.Readable
	return r
}

func lagReportOf(res *lagResult) *lagReport {
	if res == nil {
		return nil
	}
	return &lagReport{
		distribution: distributionOf(res.Lag),
		Polls:        res.Polls,
		Timeouts:     res.Timeouts,
		Skipped:      res.Skipped,
		Abandoned:    res.Abandoned,
		Errors:       res.Errors,
	}
}

// commandLine renders args as a shell command line.
func commandLine(args []string) string {
	parts := []string{"chatload"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?&;|<>()") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func (r report) writeText(w io.Writer) {
	mode := "closed loop, as fast as possible"
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop at %g/s", r.TargetRate)
	}
	fmt.Fprintf(w, "command     %s\n", r.Command)
	fmt.Fprintf(w, "machine     %d CPUs, %s/%s, %s\n", r.Machine.CPUs, r.Machine.OS, r.Machine.Arch, r.Machine.Go)
	fmt.Fprintf(w, "load        %s, %d workers, %d chats, %d-byte bodies\n", mode, r.Concurrency, r.Chats, r.BodySize)
	fmt.Fprintf(w, "window      %.1fs measured after %.1fs warm-up\n", r.WindowS, r.WarmupS)
	if r.Mode == "open" {
		fmt.Fprintf(w, "requests    %d due, %d sent, %d created (201), %d failed, %d dropped (no worker free)\n",
			r.Requests+r.Dropped, r.Requests, r.Created, r.Failed, r.Dropped)
	} else {
		fmt.Fprintf(w, "requests    %d sent, %d created (201), %d failed\n", r.Requests, r.Created, r.Failed)
	}
	fmt.Fprintf(w, "throughput  %.1f creates/s\n", r.Throughput)
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(w, "  error     %-32s %d\n", k, r.Errors[k])
	}
	fmt.Fprintf(w, "latency     %s  (201s, from scheduled start)\n", r.Latency)
	fmt.Fprintf(w, "service     %s  (201s, from actual start)\n", r.ServiceTime)
	r.writeCPU(w)
	if rd := r.Readable; rd != nil {
		if rd.Missing == 0 {
			fmt.Fprintf(w, "readable    all %d creates answered 201 counted by their chats %s after the load\n", rd.Created, rd.After.Round(time.Millisecond))
		} else {
			fmt.Fprintf(w, "readable    %d of %d creates answered 201 NOT counted by their chats %s after the load\n", rd.Missing, rd.Created, rd.After.Round(time.Millisecond))
		}
	}
	if r.Probe != nil {
		fmt.Fprintf(w, "probe       %s  (a create every -probe, 201 to readable by GET)\n", r.Probe.distribution)
		for _, k := range slices.Sorted(maps.Keys(r.Probe.Errors)) {
			fmt.Fprintf(w, "  probe error %-30s %d\n", k, r.Probe.Errors[k])
		}
	}
	if r.Lag == nil {
		return
	}
	fmt.Fprintf(w, "lag         %s  (201 to the first read that shows it; -lag-via says which)\n", r.Lag.distribution)
	perCreate := 0.0
	if r.Created > 0 {
		perCreate = float64(r.Lag.Polls) / float64(r.Created)
	}
	fmt.Fprintf(w, "lag polls   %d GETs (%.2f per create), %d timeouts (>%s), %d skipped, %d abandoned\n",
		r.Lag.Polls, perCreate, r.Lag.Timeouts, lagTimeout, r.Lag.Skipped, r.Lag.Abandoned)
	for _, k := range slices.Sorted(maps.Keys(r.Lag.Errors)) {
		fmt.Fprintf(w, "  lag error %-32s %d\n", k, r.Lag.Errors[k])
	}
}

// writeCPU prints each server process's CPU over the window, per create.
func (r report) writeCPU(w io.Writer) {
	if len(r.CPU) == 0 {
		return
	}
	total := 0.0
	for _, u := range r.CPU {
		if u.Name == "chatload" {
			continue
		}
		fmt.Fprintf(w, "cpu         %-10s %7.2fs  %6.0f µs/create\n", u.Name, u.Seconds, u.PerCreateUsec)
		total += u.PerCreateUsec
	}
	fmt.Fprintf(w, "cpu         %-10s %7s   %6.0f µs/create (the servers)\n", "total", "", total)
	for _, u := range r.CPU {
		if u.Name == "chatload" {
			fmt.Fprintf(w, "cpu         %-10s %7.2fs  %6.0f µs/create (this load generator)\n", u.Name, u.Seconds, u.PerCreateUsec)
		}
	}
}

func (d distribution) String() string {
	if d.Count == 0 {
		return "n=0"
	}
	return fmt.Sprintf("n=%d p50=%.2fms p90=%.2fms p99=%.2fms p99.9=%.2fms max=%.2fms mean=%.2fms",
		d.Count, d.P50, d.P90, d.P99, d.P999, d.Max, d.Mean)
}

func (r report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
