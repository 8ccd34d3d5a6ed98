// Package boot prepares the environment that ZincSearch reads at package
// initialisation time (pkg/config reads ZINC_* variables in its init).
//
// It must be imported (blank) by main and must not import any ZincSearch
// package. Since Go 1.21 packages are initialised in import-path order as far
// as dependencies allow; this package only imports standard-library packages
// that pkg/config itself depends on, and its path
// (github.com/chatsys/...) sorts before github.com/zincsearch/..., so its init
// runs before ZincSearch's config is read. main double-checks this and falls
// back to re-executing itself if it ever stops being true.
package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Defaults applied when the variable is not already set in the environment.
var Defaults = [][2]string{
	{"ZINC_TELEMETRY", "false"},
	{"ZINC_SENTRY", "false"},
	{"ZINC_PROFILER", "false"},
	{"ZINC_PROMETHEUS_ENABLE", "false"},
	{"ZINC_SWAGGER_ENABLE", "false"},
	{"ZINC_WAL_SYNC_INTERVAL", "100ms"}, // 10ms burns a core
	{"ZINC_PLUGIN_ES_VERSION", "8.19.7"},
	{"ZINC_SHARD_NUM", "1"}, // like Elasticsearch 8's default of one primary shard
	{"GIN_MODE", "release"},
	// Only used by pkg/auth, which this program does not link; harmless otherwise.
	{"ZINC_FIRST_ADMIN_USER", "admin"},
	{"ZINC_FIRST_ADMIN_PASSWORD", "admin"},
}

const tempDirEnv = "ZINCSEARCH_TOOL_TEMPDIR"

// DataDir is the data directory chosen for this process.
var DataDir string

// TempDataDir is true when DataDir was created here and should be removed on exit.
var TempDataDir bool

// fail reports a failure to prepare the data directory and exits: ZincSearch's
// own package initialisation would otherwise fail less clearly, or hang.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "zincsearch:", err)
	os.Exit(1)
}

func init() {
	for _, kv := range Defaults {
		if _, ok := os.LookupEnv(kv[0]); !ok {
			_ = os.Setenv(kv[0], kv[1])
		}
	}

	dir := flagValue(os.Args[1:], "data")
	if dir == "" {
		dir = os.Getenv("ZINC_DATA_PATH")
		// Survive main's fallback re-exec with the temporary directory's ownership.
		TempDataDir = dir != "" && dir == os.Getenv(tempDirEnv)
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "zincsearch-")
		if err != nil {
			fail(err)
		}
		dir, TempDataDir = d, true
		_ = os.Setenv(tempDirEnv, d)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
	}
	if err := checkNotLocked(filepath.Join(dir, "_metadata.bolt")); err != nil {
		fail(err)
	}
	DataDir = dir
	_ = os.Setenv("ZINC_DATA_PATH", dir)
}

// checkNotLocked fails if another process holds the metadata database's
// lock: ZincSearch (bbolt, no timeout) would otherwise block forever in its
// package initialisation.
func checkNotLocked(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return nil // not created yet
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("data directory %s is in use by another process: %w", filepath.Dir(file), err)
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// flagValue finds -name value, -name=value, --name value or --name=value in
// args, stopping at "--". It mirrors what the flag package will parse later.
func flagValue(args []string, name string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if strings.HasPrefix(a, name+"=") {
			return strings.TrimPrefix(a, name+"=")
		}
	}
	return ""
}
