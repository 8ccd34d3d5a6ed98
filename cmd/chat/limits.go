package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/ratelimit"
)

// newLimiter holds each application to the configured budgets, or its own.
func newLimiter(store *ratelimit.Store, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) *ratelimit.Limiter {
	return ratelimit.New(store, ratelimit.Defaults{
		Commands: int64(cfg.RateLimitCommands),
		Reads:    int64(cfg.RateLimitReads),
		Burst:    int64(cfg.RateLimitBurst),
	}, log, reg)
}

const limitsUsage = "usage: chat limits set TOKEN [-commands N|default] [-reads N|default] [-burst S|default]; chat limits show TOKEN"

// limits runs `chat limits set` and `chat limits show`. A set replaces the
// application's whole override: what it does not name follows the
// configuration again.
func limits(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) < 2 || (args[0] != "set" && args[0] != "show") {
		return errors.New(limitsUsage)
	}
	token := args[1]
	p := &process{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	defer p.close()
	d, err := p.connect(ctx)
	if err != nil {
		return err
	}
	if args[0] == "set" {
		cmd, err := parseLimits(token, args[2:])
		if err != nil {
			return err
		}
		if p.pub, err = broker.NewPublisher(d.amqp, d.names, broker.Logger(log), broker.PublisherConfig{Timeout: cfg.PublishTimeout, Channels: 1}, p.reg); err != nil {
			return err
		}
		h := commands.New(commands.Config{Numbering: d.numbers, Publisher: commandPublisher{p.pub}, Codec: d.codec, Log: log, SendWithin: cfg.PublishTimeout, Overrides: commandOverrides{d.limits}})
		if _, err := h.SetApplicationLimits(ctx, cmd); err != nil {
			return err
		}
	} else if len(args) != 2 {
		return errors.New(limitsUsage)
	}
	o, found, err := d.limits.Override(ctx, token)
	if err != nil {
		return err
	}
	showLimits(stdout, cfg, token, o, found)
	return nil
}

// parseLimits reads set's flags: a whole number, or "default".
func parseLimits(token string, args []string) (commands.SetApplicationLimits, error) {
	cmd := commands.SetApplicationLimits{Token: token}
	fs := flag.NewFlagSet("chat limits set", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	value := func(dst **int64) func(string) error {
		return func(s string) error {
			if s == "default" {
				*dst = nil
				return nil
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("want a whole number or default, got %q", s)
			}
			*dst = &n
			return nil
		}
	}
	fs.Func("commands", "commands per second; 0: no limit", value(&cmd.Commands))
	fs.Func("reads", "reads per second; 0: no limit", value(&cmd.Reads))
	fs.Func("burst", "seconds of its rate a budget holds", value(&cmd.Burst))
	if err := fs.Parse(args); err != nil {
		return cmd, fmt.Errorf("%w; %s", err, limitsUsage)
	}
	if fs.NArg() > 0 {
		return cmd, fmt.Errorf("unexpected %q; %s", fs.Arg(0), limitsUsage)
	}
	return cmd, nil
}

// showLimits prints the limits an application is held to, and where each
// comes from.
func showLimits(w io.Writer, cfg config.Config, token string, o ratelimit.Override, found bool) {
	line := func(name string, own *int64, def int, variable, unit string) {
		v, from := int64(def), variable
		if own != nil {
			v, from = *own, "override"
		}
		text := strconv.FormatInt(v, 10) + unit
		if v == 0 && unit == "/s" {
			text = "no limit"
		}
		fmt.Fprintf(w, "%-9s %-10s (%s)\n", name, text, from)
	}
	fmt.Fprintf(w, "%-9s %s\n", "token", token)
	if found {
		fmt.Fprintf(w, "%-9s version %d of the application\n", "override", o.Version)
	} else {
		fmt.Fprintf(w, "%-9s none\n", "override")
	}
	line("commands", o.Commands, cfg.RateLimitCommands, "CHAT_RATE_LIMIT_COMMANDS", "/s")
	line("reads", o.Reads, cfg.RateLimitReads, "CHAT_RATE_LIMIT_READS", "/s")
	line("burst", o.Burst, cfg.RateLimitBurst, "CHAT_RATE_LIMIT_BURST", " s")
}
