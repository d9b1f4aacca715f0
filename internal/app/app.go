// Package app is the broker's composition root: from a validated config it
// builds the store, the signing keys, the provider registry and the HTTP
// server, and it lists every background loop (loops.go), as
// broker/routes.go lists every route. `broker serve`, broker-dev and the
// broker test kit start here; the load harness runs `broker serve`.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/socialbroker/broker/broker"
	"github.com/socialbroker/broker/broker/keys"
	"github.com/socialbroker/broker/internal/config"
	"github.com/socialbroker/broker/internal/web"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// Options adjust how an App is built. The zero value is production's.
type Options struct {
	Logger          *slog.Logger     // default: discard
	Now             func() time.Time // default time.Now
	DBWait          time.Duration    // how long to wait for an unreachable database; 0: no wait
	ProviderTimeout time.Duration    // per provider call; default 10s
	Version         string           // logged when serving
}

// App is one configured broker.
type App struct {
	Config    *config.Config
	Store     *storage.Store
	Keys      *keys.Manager
	Providers *providers.Registry
	Metrics   *broker.Metrics
	Server    *broker.Server

	log     *slog.Logger
	version string
}

// New builds the broker from cfg: it opens the store (waiting up to
// o.DBWait), applies migrations when database.auto_migrate is on, loads or
// makes the signing keys, and builds the providers and the server. Close
// releases the store.
func New(ctx context.Context, cfg *config.Config, o Options) (a *App, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a = &App{Config: cfg, Metrics: broker.NewMetrics(), log: o.Logger, version: o.Version}
	for _, w := range cfg.Warnings {
		o.Logger.Warn("config: " + w)
	}
	st, err := OpenStore(ctx, cfg, o.DBWait)
	if err != nil {
		return nil, err
	}
	a.Store = st
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	if cfg.Database.AutoMigrate {
		n, err := a.Store.Migrate(ctx)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			o.Logger.Info("migrations applied", "count", n)
		}
	} else if n, err := a.Store.PendingMigrations(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		return nil, fmt.Errorf("database.auto_migrate is false and the database lacks %d migration(s): run `broker migrate --config FILE` first", n)
	}
	if a.Keys, err = NewKeyManager(a.Store, cfg, o.Logger, a.Metrics, o.Now); err != nil {
		return nil, err
	}
	if err := a.Keys.Ensure(ctx); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	a.Providers, err = providers.NewRegistry(cfg.Providers, providers.Options{
		RedirectBase: cfg.Issuer, Timeout: o.ProviderTimeout, Now: o.Now, Logger: o.Logger,
	})
	if err != nil {
		return nil, err
	}
	w := cfg.Web
	pages, err := web.NewWith(web.Options{TemplatesDir: w.TemplatesDir, StaticDir: w.StaticDir, Brand: web.Brand{
		ProductName: w.ProductName, LogoURL: w.LogoURL, PrimaryColor: w.PrimaryColor, TermsURL: w.TermsURL, PrivacyURL: w.PrivacyURL,
	}})
	if err != nil {
		return nil, err
	}
	a.Server, err = broker.New(broker.Deps{
		Config: BrokerConfig(cfg), Store: a.Store, Keys: a.Keys, Providers: a.Providers,
		Pages: pages, Metrics: a.Metrics, Logger: o.Logger, Now: o.Now,
	})
	if err != nil {
		return nil, err
	}
	// Events committed from now on go to exactly the configured endpoints,
	// and their delivery starts at once.
	if err := a.Server.SyncEventEndpoints(ctx); err != nil {
		return nil, err
	}
	a.Store.OnEvents(a.Server.KickEvents)
	return a, nil
}

// Close releases the store.
func (a *App) Close() { a.Store.Close() }

// BrokerConfig is the HTTP surface's part of the config.
func BrokerConfig(c *config.Config) broker.Config {
	return broker.Config{
		Issuer:    c.Issuer,
		Redirects: c.Redirects,
		Cookies:   broker.CookieConfig{HashKey: c.Cookies.HashKey, BlockKey: c.Cookies.BlockKey, Secure: c.Cookies.Secure},
		Tokens: broker.TokenConfig{AccessTTL: c.Tokens.AccessTTL, RefreshTTL: c.Tokens.RefreshTTL,
			RefreshIdleTTL: c.Tokens.RefreshIdleTTL, ReuseGrace: c.Tokens.ReuseGrace, Audience: c.Tokens.Audience,
			ProfileClaims: c.Tokens.ProfileClaims},
		Keys:       broker.KeyConfig{EncryptionKey: c.Keys.EncryptionKey, JWKSMaxAge: c.Keys.JWKSMaxAge},
		CORS:       broker.CORSConfig{AllowedOrigins: c.CORS.AllowedOrigins},
		Limits:     broker.LimitConfig{Login: c.Limits.Login, Callback: c.Limits.Callback, Token: c.Limits.Token, TrustedProxies: c.Limits.TrustedProxies},
		Signup:     broker.SignupConfig{Mode: c.Signup.Mode, Fields: c.Signup.Fields, Terms: signupTerms(c.Signup.Terms)},
		Admin:      broker.AdminConfig{Listen: c.Admin.Listen},
		Events:     broker.EventsConfig{Endpoints: eventEndpoints(c.Events.Endpoints), Retry: c.Events.Retry},
		Audit:      broker.AuditConfig{Retention: c.Audit.Retention},
		Demo:       c.Demo,
		NativeApps: c.NativeApps,
	}
}

func signupTerms(ts []config.Term) []broker.Term {
	out := make([]broker.Term, len(ts))
	for i, t := range ts {
		out[i] = broker.Term{Tag: t.Tag, Required: t.Required, URL: t.URL}
	}
	return out
}

func eventEndpoints(eps []config.EventEndpoint) []broker.EventEndpoint {
	out := make([]broker.EventEndpoint, len(eps))
	for i, e := range eps {
		out[i] = broker.EventEndpoint{URL: e.URL, Secret: e.Secret, Types: e.Types}
	}
	return out
}

// OpenStore connects and, with wait > 0, waits that long for the database
// to answer.
func OpenStore(ctx context.Context, cfg *config.Config, wait time.Duration) (*storage.Store, error) {
	st, err := storage.Open(ctx, cfg.Database.URL, storage.Options{MaxConns: cfg.Database.MaxConns})
	if err != nil || wait <= 0 {
		return st, err
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

// dbName names a database URL without its credentials, for messages.
func dbName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the database"
	}
	return u.Host + u.Path
}

// NewKeyManager is the signing-key manager of cfg; m (optional) counts
// rotations, now (optional) is its clock.
func NewKeyManager(st *storage.Store, cfg *config.Config, log *slog.Logger, m *broker.Metrics, now func() time.Time) (*keys.Manager, error) {
	kc := keys.Config{
		EncryptionKey: cfg.Keys.EncryptionKey, RotateEvery: cfg.Keys.RotateEvery,
		MaxAge: cfg.Keys.JWKSMaxAge, AccessTTL: cfg.Tokens.AccessTTL, Now: now, Logger: log,
	}
	if m != nil {
		kc.OnRotate = m.KeyRotations.Inc
	}
	return keys.New(st, kc)
}
