// Command chatload measures the chat API under load: it creates a few
// applications and chats, then posts messages to them, open-loop at a fixed
// rate or closed-loop as fast as the server answers, and reports throughput,
// latency and read-your-write lag.
//
//	chatload -url http://127.0.0.1:8080 -rate 3000 -duration 60s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// config is the command line.
type config struct {
	url         string
	rate        float64
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	apps        int
	chats       int
	bodySize    int
	lagSample   float64
	lagVia      string
	probe       time.Duration
	cpu         []process
	// checkReadable waits, after the load, until every 201 reads back.
	checkReadable bool
	json          bool
	// neighbours runs the two-application isolation measurement instead.
	neighbours bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("chatload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "base URL of the chat API")
	fs.Float64Var(&c.rate, "rate", 0, "message creates per second, open loop; 0 runs closed loop, as fast as possible")
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "length of the measured window")
	fs.DurationVar(&c.warmup, "warmup", 5*time.Second, "load before the measured window, not counted")
	fs.IntVar(&c.concurrency, "concurrency", 256, "most requests in flight (workers)")
	fs.IntVar(&c.apps, "apps", 4, "applications to create")
	fs.IntVar(&c.chats, "chats", 16, "chats to create per application")
	fs.IntVar(&c.bodySize, "body-size", 64, "message body size in bytes")
	fs.Float64Var(&c.lagSample, "lag-sample", 0.02, "fraction of creates whose read-your-write lag is measured")
	fs.StringVar(&c.lagVia, "lag-via", "get", "how lag is measured: get (until GET of the message answers) or search (until a search for a word unique to the message finds it)")
	fs.DurationVar(&c.probe, "probe", 0, "also create one message every this often during the window, apart from the load, and time each until GET reads it (0: no probe)")
	fs.BoolVar(&c.checkReadable, "check-readable", false, "after the load, wait until each chat's messages_count holds every 201 it was given, and report it")
	cpu := fs.String("cpu", "", "server processes whose CPU per create to report, as name=pid,name=pid (Linux)")
	fs.BoolVar(&c.json, "json", false, "also print the summary as JSON")
	fs.BoolVar(&c.neighbours, "neighbours", false, "measure two applications instead: a quiet one creating at -rate, alone and then beside a noisy one in closed loop with -concurrency workers, first ignoring its 429s, then obeying their Retry-After; each phase lasts -duration")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	procs, err := parseProcesses(*cpu)
	if err != nil {
		return config{}, err
	}
	if len(procs) > 0 {
		// The load generator's own share of the machine, to tell what is
		// left for the servers.
		procs = append(procs, process{"chatload", os.Getpid()})
	}
	c.cpu = procs
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return c, c.validate()
}

func (c config) validate() error {
	u, err := url.Parse(c.url)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("-url %q is not an http(s) URL", c.url)
	case c.rate < 0:
		return errors.New("-rate must not be negative")
	case c.duration <= 0:
		return errors.New("-duration must be positive")
	case c.warmup < 0:
		return errors.New("-warmup must not be negative")
	case c.concurrency < 1, c.apps < 1, c.chats < 1:
		return errors.New("-concurrency, -apps and -chats must be at least 1")
	case c.bodySize < 1 || c.bodySize > 64<<10:
		return errors.New("-body-size must be between 1 and 65536")
	case c.lagVia != "get" && c.lagVia != "search":
		return fmt.Errorf("-lag-via must be get or search, got %q", c.lagVia)
	case c.lagSample < 0 || c.lagSample > 1:
		return errors.New("-lag-sample must be between 0 and 1")
	case c.probe < 0:
		return errors.New("-probe must not be negative")
	case c.neighbours && c.rate <= 0:
		return errors.New("-neighbours needs the quiet application's -rate")
	}
	return nil
}

// run executes chatload and returns its exit code: non-zero only when the
// command line is wrong or the setup fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "chatload: %v\n", err)
		return 2
	}
	api := newAPIClient(cfg.url, cfg.concurrency)
	defer api.close()
	if cfg.neighbours {
		return runNeighbours(ctx, cfg, api, stdout, stderr)
	}

	targets, err := setup(ctx, api, cfg.apps, cfg.chats, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chatload: setup: %v\n", err)
		return 1
	}
	res := runLoad(ctx, cfg, api, targets, stderr)
	rep := newReport(cfg, args, res)
	rep.writeText(stdout)
	if cfg.json {
		if err := rep.writeJSON(stdout); err != nil {
			fmt.Fprintf(stderr, "chatload: %v\n", err)
		}
	}
	return 0
}
