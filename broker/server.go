// Package broker is the broker's HTTP surface: the login flow, the token
// endpoint, logout, /auth/me, the well-known documents and the operational
// endpoints. routes.go lists every route.
package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/socialbroker/broker/broker/keys"
	"github.com/socialbroker/broker/internal/ratelimit"
	"github.com/socialbroker/broker/internal/seal"
	"github.com/socialbroker/broker/internal/web"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// Deps are the server's dependencies, built once at start.
type Deps struct {
	Config    Config
	Store     *storage.Store
	Keys      *keys.Manager
	Providers *providers.Registry
	Pages     *web.Renderer
	Metrics   *Metrics
	Logger    *slog.Logger
	Now       func() time.Time // default time.Now
}

// Server serves the broker's HTTP surface.
type Server struct {
	cfg       Config
	store     *storage.Store
	keys      *keys.Manager
	providers *providers.Registry
	pages     *web.Renderer
	metrics   *Metrics
	log       *slog.Logger
	now       func() time.Time

	refresh refreshKeys
	grants  *seal.Box
	cookies *securecookie.SecureCookie // state and signup cookies
	origin  string                     // the issuer's origin
	// stateCookie and signupCookie carry login flows (flowCookies).
	stateCookie, signupCookie flowCookie
	discovery                 []byte
	limits                    struct{ login, callback, token *ratelimit.Limiter }

	revokeKick chan struct{}
	eventsMu   sync.Mutex
	eventKicks []chan struct{} // one per delivery loop
	webhooks   *http.Client
	draining   atomic.Bool // set by Drain: /readyz answers 503
}

// New builds a Server.
func New(d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics()
	}
	s := &Server{
		cfg: d.Config, store: d.Store, keys: d.Keys, providers: d.Providers,
		pages: d.Pages, metrics: d.Metrics, log: slog.New(requestIDHandler{d.Logger.Handler()}), now: d.Now,
		revokeKick: make(chan struct{}, 1),
		webhooks:   webhookClient(),
	}
	var err error
	if s.refresh, err = newRefreshKeys(d.Config.Keys.EncryptionKey); err != nil {
		return nil, err
	}
	if s.grants, err = seal.New(d.Config.Keys.EncryptionKey); err != nil {
		return nil, err
	}
	s.cookies = securecookie.New(d.Config.Cookies.HashKey, d.Config.Cookies.BlockKey)
	s.cookies.MaxAge(int(flowCookieTTL / time.Second))
	s.cookies.MaxLength(8192)
	u, err := url.Parse(d.Config.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	s.origin = u.Scheme + "://" + u.Host
	s.stateCookie, s.signupCookie = flowCookies(u.Scheme == "https")
	if s.discovery, err = discoveryDocument(d.Config.Issuer); err != nil {
		return nil, err
	}
	s.limits.login = ratelimit.New(d.Config.Limits.Login, time.Minute)
	s.limits.callback = ratelimit.New(d.Config.Limits.Callback, time.Minute)
	s.limits.token = ratelimit.New(d.Config.Limits.Token, time.Minute)
	return s, nil
}

// RunMaintenance deletes ended sessions and their tokens, used single-use
// values, audit rows past audit.retention and finished events periodically
// until ctx ends. Revoked and expired sessions are kept a day for
// investigation.
func (s *Server) RunMaintenance(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.store.Cleanup(ctx, s.now(), s.cfg.Tokens.RefreshIdleTTL, 24*time.Hour)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("session cleanup failed", "err", err)
			}
			continue
		}
		if n > 0 {
			s.log.Info("ended sessions deleted", "count", n)
		}
		if _, err := s.store.CleanupOnce(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.Warn("single-use values cleanup failed", "err", err)
		}
		if _, err := s.store.CleanupCodes(ctx, s.now(), nativeCodesKept); err != nil && ctx.Err() == nil {
			s.log.Warn("native codes cleanup failed", "err", err)
		}
		if _, err := s.store.CleanupAudit(ctx, s.now().Add(-s.cfg.Audit.Retention)); err != nil && ctx.Err() == nil {
			s.log.Warn("audit log cleanup failed", "err", err)
		}
		if _, err := s.store.CleanupEvents(ctx, s.now().Add(-eventsKept)); err != nil && ctx.Err() == nil {
			s.log.Warn("events cleanup failed", "err", err)
		}
	}
}

// eventsKept is how long an event is kept once every delivery of it ended
// (delivered or given up), so operators can list and redeliver it.
const eventsKept = 30 * 24 * time.Hour
