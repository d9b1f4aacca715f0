package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/socialbroker/broker/internal/app"
	"github.com/socialbroker/broker/internal/config"
)

// dbWait is how long serve waits for an unreachable database.
const dbWait = 20 * time.Second

// loadConfig reads --config; every problem goes to stderr, one per line.
func loadConfig(path string, getenv func(string) string, stderr io.Writer) (*config.Config, error) {
	if path == "" {
		return nil, usageError{"--config FILE is required"}
	}
	cfg, err := config.Load(path, getenv)
	if err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 1 {
			for _, e := range j.Unwrap() {
				fmt.Fprintln(stderr, e)
			}
		}
		return nil, err
	}
	return cfg, nil
}

func newLogger(w io.Writer) *slog.Logger {
	return configLogger(w, config.Log{Level: slog.LevelInfo, Format: "json"})
}

// configLogger writes at log.level in log.format.
func configLogger(w io.Writer, c config.Log) *slog.Logger {
	o := &slog.HandlerOptions{Level: c.Level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	path := fs.String("config", "", "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, getenv, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, configLogger(stderr, cfg.Log), nil)
}

// serve runs the broker until ctx ends. ready, when set, receives the
// listening address.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, ready func(addr string)) error {
	a, err := app.New(ctx, cfg, app.Options{Logger: log, DBWait: dbWait, Version: versionString()})
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx, ready)
}
