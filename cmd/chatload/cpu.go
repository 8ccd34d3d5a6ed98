package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the unit of a process's CPU times in /proc/<pid>/stat
// (USER_HZ, 100 on Linux everywhere that matters).
const clockTicks = 100

// process is a server process whose CPU the run accounts for.
type process struct {
	Name string
	PID  int
}

// parseProcesses reads "name=pid,name=pid".
func parseProcesses(s string) ([]process, error) {
	if s == "" {
		return nil, nil
	}
	var out []process
	for _, part := range strings.Split(s, ",") {
		name, pid, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(pid)
		if !ok || name == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("-cpu: %q is not name=pid", part)
		}
		out = append(out, process{name, n})
	}
	return out, nil
}

// cpuTime is the CPU a process has used, user and system.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: the fields follow its ")".
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	// utime and stime are fields 14 and 15 of the whole line.
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad CPU times", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// cpuSample is the CPU of each process at one moment.
type cpuSample []time.Duration

func sampleCPU(procs []process) cpuSample {
	out := make(cpuSample, len(procs))
	for i, p := range procs {
		t, err := cpuTime(p.PID)
		if err != nil {
			t = -1
		}
		out[i] = t
	}
	return out
}

// cpuUse is what a process spent over the measured window.
type cpuUse struct {
	Name          string  `json:"name"`
	PID           int     `json:"pid"`
	Seconds       float64 `json:"cpu_seconds"`
	PerCreateUsec float64 `json:"cpu_us_per_create"`
}

func cpuUses(procs []process, from, to cpuSample, created int64) []cpuUse {
	var out []cpuUse
	for i, p := range procs {
		if from[i] < 0 || to[i] < 0 {
			continue
		}
		d := to[i] - from[i]
		u := cpuUse{Name: p.Name, PID: p.PID, Seconds: d.Seconds()}
		if created > 0 {
			u.PerCreateUsec = float64(d.Microseconds()) / float64(created)
		}
		out = append(out, u)
	}
	return out
}
