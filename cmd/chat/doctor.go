package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/projections"
)

// errChecksFailed makes the process exit non-zero after a report of failures.
var errChecksFailed = errors.New("some checks failed")

// doctor runs checks against the configured dependencies.
func doctor(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	if len(args) != 1 || args[0] != "search" {
		return fmt.Errorf("usage: chat doctor search")
	}
	es, err := newElasticsearch(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fmt.Fprintf(out, "checking partial matching on %s\n", cfg.ElasticsearchURL)
	ok, err := projections.CheckSearch(ctx, es, cfg.Namespace, out)
	if err != nil {
		return err
	}
	if !ok {
		return errChecksFailed
	}
	fmt.Fprintln(out, "all search checks passed")
	return nil
}
