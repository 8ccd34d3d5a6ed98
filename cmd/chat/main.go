// Command chat runs the chat system: the HTTP API, the event store writer and
// projectors, and the tools around them.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/chatsys/chat/config"
)

const usage = `usage: chat <command>

commands:
  serve     run the HTTP API (commands and queries)
  work      run the event store writer and the projectors
  all       run serve and work in one process
  migrate   create the database if needed and apply schema migrations
  doctor    check every dependency (MySQL, Redis, RabbitMQ, Elasticsearch)
            and what this namespace needs on each; prints ok, WARN or FAIL
            and a fix per check, and exits 1 when any check failed
  doctor search
            check partial matching on the configured Elasticsearch with a
            temporary index built with the production settings
  replay [mysql|search|all] [--dry-run] [--restart]
            rebuild projections from the event store while the system runs:
            build a new copy, catch up, swap it in; resumes an unfinished
            replay unless --restart
  verify [--no-search]
            fold the event store and compare it with the read tables and
            the search index; exits 1 on any difference
  limits set TOKEN [-commands N|default] [-reads N|default] [-burst S|default]
            replace an application's rate-limit override (requests per
            second, burst in seconds; 0 lifts a limit; what is not named
            follows CHAT_RATE_LIMIT_*); it is an event, kept in the log
  limits show TOKEN
            print the limits an application is held to, and their source
  env       list the environment variables read, with their defaults

Configuration comes from the environment; see 'chat env'.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "env" {
		for _, v := range config.Variables() {
			fmt.Fprintf(stdout, "%-24s %-48s %s\n", v.Name, v.Default, v.Help)
		}
		return 0
	}
	cfg, err := config.Load(lookup)
	if err != nil {
		// One line per bad variable, each with the same prefix.
		fmt.Fprintf(stderr, "chat: configuration: %s\n", strings.ReplaceAll(err.Error(), "\n", "\nchat: configuration: "))
		return 2
	}
	log := newLogger(cfg, stderr)
	var runErr error
	switch args[0] {
	case "serve":
		runErr = runProcess(ctx, cfg, log, true, false)
	case "work":
		runErr = runProcess(ctx, cfg, log, false, true)
	case "all":
		runErr = runProcess(ctx, cfg, log, true, true)
	case "migrate":
		runErr = migrate(ctx, cfg, log)
	case "doctor":
		runErr = doctor(ctx, cfg, args[1:], stdout)
	case "replay":
		runErr = replay(ctx, cfg, log, args[1:], stdout, stderr)
	case "verify":
		runErr = verifyProjections(ctx, cfg, log, args[1:], stdout, stderr)
	case "limits":
		runErr = limits(ctx, cfg, log, args[1:], stdout)
	default:
		fmt.Fprintf(stderr, "chat: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if runErr != nil {
		log.Error("chat "+args[0]+" failed", "err", runErr)
		return 1
	}
	return 0
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
