// Command zincsearch runs ZincSearch v0.4.10 in-process behind an
// Elasticsearch-8-shaped HTTP API, as a stand-in for Elasticsearch in tests.
//
//	zincsearch -addr 127.0.0.1:4080 -data /tmp/zinc
//
// It prints "listening on HOST:PORT" on stdout once it serves; everything
// else is logged to stderr. See README.md for the known divergences.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/log"

	// boot must be initialised before ZincSearch's pkg/config; see its doc.
	"github.com/chatsys/chat/tools/zincsearch/internal/boot"

	"github.com/zincsearch/zincsearch/pkg/config"
	"github.com/zincsearch/zincsearch/pkg/core"
	"github.com/zincsearch/zincsearch/pkg/meta"
	"github.com/zincsearch/zincsearch/pkg/metadata"
)

const (
	reexecGuard = "ZINCSEARCH_TOOL_REEXEC"
	zincVersion = "v0.4.10" // keep in step with go.mod
)

func main() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)

	// Own flag set: a dependency (glog) registers its flags on flag.CommandLine.
	fs := flag.NewFlagSet(filepath.Base(os.Args[0]), flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:4080", "listen address (host:port; port 0 picks a free port)")
	fs.String("data", "", "data directory (default: $ZINC_DATA_PATH, else a new temporary directory removed on exit)")
	verbose := fs.Bool("access-log", false, "log every request to stderr (errors are always logged)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if boot.TempDataDir {
			_ = os.RemoveAll(boot.DataDir)
		}
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}

	log.Logger = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true, TimeFormat: time.RFC3339}).
		With().Timestamp().Logger()
	zerolog.SetGlobalLevel(zerolog.InfoLevel)

	ensureConfigured()
	if meta.Version == "v0.0.0" { // normally set by ZincSearch's build flags
		meta.Version = zincVersion
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	setRoutes(r, *verbose)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		if boot.TempDataDir {
			_ = os.RemoveAll(boot.DataDir)
		}
		log.Fatal().Err(err).Str("addr", *addr).Msg("listen")
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}

	log.Info().Str("version", meta.Version).Str("data", boot.DataDir).
		Str("es_version", config.Global.Plugin.ES.Version).
		Dur("wal_sync_interval", config.Global.WalSyncInterval).
		Msg("zincsearch (Elasticsearch stand-in) starting")

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Printf("listening on %s\n", ln.Addr())

	select {
	case s := <-sig:
		log.Info().Str("signal", s.String()).Msg("shutting down")
		go func() { // a second signal exits at once
			<-sig
			os.Exit(1)
		}()
	case err := <-serveErr:
		log.Error().Err(err).Msg("server stopped")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error().Err(err).Msg("http shutdown")
	}
	if err := core.ZINC_INDEX_LIST.Close(); err != nil {
		log.Error().Err(err).Msg("closing indexes")
	}
	if err := metadata.Close(); err != nil {
		log.Error().Err(err).Msg("closing metadata")
	}
	if boot.TempDataDir {
		_ = os.RemoveAll(boot.DataDir)
	}
	log.Info().Msg("stopped")
}

// ensureConfigured checks that ZincSearch's config (read in its package init)
// saw the environment prepared by package boot. If package initialisation
// order ever changes so that it did not, re-execute once: the environment is
// set now, so the new process image reads it.
func ensureConfigured() {
	got, _ := filepath.Abs(config.Global.DataPath)
	if got == boot.DataDir && config.Global.Plugin.ES.Version != "" {
		return
	}
	if os.Getenv(reexecGuard) != "" {
		log.Fatal().Str("want", boot.DataDir).Str("got", got).Msg("ZincSearch did not pick up ZINC_DATA_PATH")
	}
	exe, err := os.Executable()
	if err != nil {
		log.Fatal().Err(err).Msg("re-exec")
	}
	_ = os.Setenv(reexecGuard, "1")
	_ = os.Setenv("ZINC_DATA_PATH", boot.DataDir)
	log.Warn().Msg("ZincSearch config was initialised before the environment was set; re-executing")
	err = syscall.Exec(exe, os.Args, os.Environ())
	log.Fatal().Err(err).Msg("re-exec")
}
