package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/socialbroker/broker/broker"
	"github.com/socialbroker/broker/broker/keys"
	"github.com/socialbroker/broker/internal/config"
	"github.com/socialbroker/broker/internal/web"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

const (
	dbWait          = 20 * time.Second // how long serve waits for an unreachable database
	shutdownTimeout = 20 * time.Second
)

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
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// dbName names a database URL without its credentials, for messages.
func dbName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the database"
	}
	return u.Host + u.Path
}

// openStore connects and waits up to wait for the database to answer.
func openStore(ctx context.Context, cfg *config.Config, wait time.Duration) (*storage.Store, error) {
	st, err := storage.Open(ctx, cfg.Database.URL, storage.Options{MaxConns: cfg.Database.MaxConns})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err = st.Ping(ctx)
		if err == nil {
			return st, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			st.Close()
			return nil, fmt.Errorf("database %s unreachable: %w", dbName(cfg.Database.URL), err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func newKeyManager(st *storage.Store, cfg *config.Config, log *slog.Logger, m *broker.Metrics) (*keys.Manager, error) {
	kc := keys.Config{
		EncryptionKey: cfg.Keys.EncryptionKey, RotateEvery: cfg.Keys.RotateEvery,
		MaxAge: cfg.Keys.JWKSMaxAge, AccessTTL: cfg.Tokens.AccessTTL, Logger: log,
	}
	if m != nil {
		kc.OnRotate = m.KeyRotations.Inc
	}
	return keys.New(st, kc)
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
	return serve(ctx, cfg, newLogger(stderr), stdout, nil)
}

// serve runs the broker until ctx ends. ready, when set, receives the
// listening address.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer, ready func(addr string)) error {
	st, err := openStore(ctx, cfg, dbWait)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.Database.AutoMigrate {
		n, err := st.Migrate(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info("migrations applied", "count", n)
		}
	}
	metrics := broker.NewMetrics()
	km, err := newKeyManager(st, cfg, log, metrics)
	if err != nil {
		return err
	}
	if err := km.Ensure(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	reg, err := providers.NewRegistry(cfg.Providers, providers.Options{RedirectBase: cfg.Issuer, Logger: log})
	if err != nil {
		return err
	}
	pages, err := web.New()
	if err != nil {
		return err
	}
	srv, err := broker.New(broker.Deps{
		Config: cfg, Store: st, Keys: km, Providers: reg, Pages: pages, Metrics: metrics, Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go km.Run(bg)
	go srv.RunMaintenance(bg, 5*time.Minute)
	go srv.RunRevocations(bg)

	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	var admin *http.Server
	if cfg.Admin.Listen != "" {
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
		admin = &http.Server{Handler: srv.AdminHandler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: hs.ErrorLog}
		go func() { errc <- admin.Serve(aln) }()
		defer admin.Close()
		log.Info("admin listening", "addr", aln.Addr().String())
	}
	log.Info("broker listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "version", versionString())
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return drainAndStop(log, srv, hs, errc, cfg.Shutdown.Drain)
}
