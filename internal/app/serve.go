package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// shutdownTimeout bounds how long in-flight requests may take to finish.
const shutdownTimeout = 20 * time.Second

// Loop is one background job of a running broker.
type Loop struct {
	Name string
	Run  func(ctx context.Context) // returns when ctx ends
}

// Loops are every background job of a running broker.
func (a *App) Loops() []Loop {
	return []Loop{
		{"signing key schedule", a.Keys.Run}, // reload, publish, activate, retire
		{"session maintenance", func(ctx context.Context) { a.Server.RunMaintenance(ctx, 5*time.Minute) }}, // ended sessions, single-use values, audit rows, finished events
		{"revocation outbox", a.Server.RunRevocations},                                                     // provider grants of deleted or unlinked identities
		{"event delivery", a.Server.RunEvents},                                                             // webhooks to the product's backends, one loop per endpoint
	}
}

// Serve listens on the config's address and serves until ctx ends, with
// every loop running; then it finishes in-flight requests. ready, when
// set, receives the listening address.
func (a *App) Serve(ctx context.Context, ready func(addr string)) error {
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           a.Server.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	for _, l := range a.Loops() {
		go l.Run(bg)
	}

	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	if a.Config.Admin.Listen != "" { // the admin API and /metrics
		aln, err := net.Listen("tcp", a.Config.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
		admin := &http.Server{Handler: a.Server.AdminHandler(), ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout: 15 * time.Second, WriteTimeout: 60 * time.Second, ErrorLog: hs.ErrorLog}
		go func() { errc <- admin.Serve(aln) }()
		defer admin.Close()
		a.log.Info("admin listening", "addr", aln.Addr().String())
	}
	a.log.Info("broker listening", "addr", ln.Addr().String(), "issuer", a.Config.Issuer, "version", a.version)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Draining: /readyz answers 503 at once and serving goes on for
	// shutdown.drain, so that load balancers see the broker go unready and
	// move away (every response meanwhile closes its connection); then the
	// listener closes and in-flight requests finish.
	a.Server.Drain()
	if drain := a.Config.Shutdown.Drain; drain > 0 {
		a.log.Info("draining: /readyz answers 503, still serving", "drain", drain.String())
		select {
		case <-time.After(drain):
		case err := <-errc: // a listener failed meanwhile
			return err
		}
	}
	a.log.Info("shutting down: finishing in-flight requests")
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.log.Info("stopped")
	return nil
}
