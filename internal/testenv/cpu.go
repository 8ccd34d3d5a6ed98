package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ProcessCPU is the user and system CPU time a process has used so far, 0
// when it cannot be read. Benchmarks report the difference across their
// run as the CPU a server spent on their work.
func ProcessCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command's closing parenthesis; utime and stime
	// are the 14th and 15th of the line, in clock ticks (100 a second).
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// DatabasePID is the pid of the local database server, 0 when there is
// none to be seen.
func DatabasePID() int {
	return max(PidOf("mariadbd"), PidOf("mysqld"))
}

// BrokerPID is the pid of the local RabbitMQ node, 0 when there is none or
// several (a cluster's nodes: which one is not known).
func BrokerPID() int {
	return PidOf("beam.smp")
}

// PidOf is the pid of the one process of that name, 0 when there is none
// or several.
func PidOf(name string) int {
	out, err := exec.Command("pidof", name).Output()
	if err != nil {
		return 0
	}
	pids := strings.Fields(string(out))
	if len(pids) != 1 {
		return 0
	}
	pid, _ := strconv.Atoi(pids[0])
	return pid
}
