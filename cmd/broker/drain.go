package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/socialbroker/broker/broker"
)

// drainAndStop is serve's answer to SIGTERM: /readyz answers 503 at once
// and the listener keeps serving for drain, so that load balancers see the
// broker go unready and move away (every response meanwhile closes its
// connection); then the listener closes and in-flight requests finish,
// for at most shutdownTimeout. errc receives the listener's Serve result.
func drainAndStop(log *slog.Logger, srv *broker.Server, hs *http.Server, errc <-chan error, drain time.Duration) error {
	srv.Drain()
	if drain > 0 {
		log.Info("draining: /readyz answers 503, still serving", "drain", drain.String())
		select {
		case <-time.After(drain):
		case err := <-errc: // the listener failed meanwhile
			return err
		}
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
