// Package brokertest runs a whole broker for tests: real Postgres (a fresh
// migrated database per test), emulated providers on loopback, an
// injectable clock, captured logs, and the real HTTP handler on a loopback
// server.
package brokertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/socialbroker/broker/broker"
	"github.com/socialbroker/broker/broker/keys"
	"github.com/socialbroker/broker/internal/app"
	"github.com/socialbroker/broker/internal/config"
	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/internal/testclock"
	"github.com/socialbroker/broker/storage"
	"github.com/socialbroker/broker/storage/storagetest"
)

// Clock is the settable clock shared by the broker, its keys, the
// providers and the emulators.
type Clock = testclock.Clock

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return testclock.New(t) }

// Logs collects the broker's JSON log lines.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Options shape the broker under test. Zero values give the contract's
// defaults with short, test-friendly lifetimes where noted.
type Options struct {
	DatabaseURL   string   // default: a fresh migrated database
	Signup        string   // form (default) or auto
	Fields        []string // default [nickname]
	Providers     []string // emulated provider kinds to configure; default: kakao, naver, google, oidc, oauth2
	AccessTTL     time.Duration
	ReuseGrace    time.Duration // default 10s
	IdleTTL       time.Duration // default 168h
	RefreshTTL    time.Duration // default 720h
	MaxAge        time.Duration // keys.jwks_max_age, default 10m
	Extra         string        // extra top-level YAML (e.g. a limits: block)
	Clock         *Clock        // default: a clock at the real time
	Keys          []byte        // encryption key; default: fixed test key
	TLS           bool          // serve over HTTPS (an https issuer, Secure cookies); Client trusts the test certificate
	NoDemo        bool          // serve without the demo frontend (demo: false, serve's default)
	ProfileClaims []string      // tokens.profile_claims
	// EmulatorHosts names, per kind, the host in that emulator's URLs
	// (fakeidp.Options.Host): "localhost" puts it on another site than the
	// broker at 127.0.0.1.
	EmulatorHosts map[string]string
	Terms         string                // signup.terms as a YAML flow list, e.g. [{tag: service, required: true, url: https://x/t}]
	KakaoSync     []fakeidp.ServiceTerm // Kakao Sync terms of the kakao emulator, asked through service_terms
}

// Env is a running broker.
type Env struct {
	URL       string
	Config    *config.Config
	Store     *storage.Store
	Keys      *keys.Manager
	Clock     *Clock
	Logs      *Logs
	Emulators map[string]*fakeidp.Emulator
	Server    *httptest.Server
	Broker    *broker.Server
}

// Key32 is a fixed 32-byte test key, base64.
var Key32 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 32))

// Users is who each emulator logs in by default.
var Users = map[string]fakeidp.User{
	"kakao":  {Subject: "9007199254740993", Nickname: "라이언"},
	"naver":  {Subject: "Vv7C1QbWx3nJ5dHqL0aYs9", Nickname: "네이버친구", Email: "friend@naver.example"},
	"google": {Subject: "104857600000000000001", Email: "dev@gmail.example", EmailVerified: true, Name: "Dev User", Nickname: "Dev"},
	"oidc":   {Subject: "acme-user-1", Email: "a@acme.example", EmailVerified: true, Name: "Acme User"},
	"oauth2": {Subject: "12345678901234567890", Email: "g@git.example", Nickname: "gitter", Name: "Git Ter"},
	"apple":  {Subject: "001234.5f1c2e3d4b5a69788796a5b4c3d2e1f0.1234", Email: "q8x2k7m4pz@privaterelay.appleid.com", EmailVerified: true, Name: "Alex Appleseed"},
}

// New starts a broker for t; everything stops at cleanup.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	if o.Clock == nil {
		o.Clock = NewClock(time.Now())
	}
	if o.Signup == "" {
		o.Signup = "form"
	}
	if o.Fields == nil {
		o.Fields = []string{"nickname"}
	}
	if o.Providers == nil {
		o.Providers = []string{"kakao", "naver", "google", "oidc", "oauth2"}
	}
	dur := func(d, def time.Duration) string {
		if d == 0 {
			d = def
		}
		return d.String()
	}
	if o.DatabaseURL == "" {
		o.DatabaseURL = storagetest.NewURL(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	if o.TLS {
		issuer = "https://" + ln.Addr().String()
	}
	env := &Env{URL: issuer, Clock: o.Clock, Logs: &Logs{}, Emulators: map[string]*fakeidp.Emulator{}}

	var entries []map[string]any
	for _, kind := range o.Providers {
		em, err := fakeidp.Start(fakeidp.Options{
			Kind: fakeidp.Kind(kind), ClientID: kind + "-client", ClientSecret: kind + "-secret",
			AdminKey: "kakao-admin-key", RedirectURIs: []string{issuer + "/auth/callback/" + kind},
			ExtraAudiences: []string{kind + "-native"}, User: Users[kind], Now: o.Clock.Now,
			AttackerEndpoints: true, // forged id_tokens name them
			Host:              o.EmulatorHosts[kind],
			ServiceTerms:      kakaoSync(kind, o.KakaoSync),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(em.Close)
		env.Emulators[kind] = em
		entries = append(entries, em.ProviderConfig(kind, true))
	}
	prov, err := yaml.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	key := Key32
	if o.Keys != nil {
		key = base64.StdEncoding.EncodeToString(o.Keys)
	}
	doc := fmt.Sprintf(`issuer: %s
listen: %s
database:
  url: %s
cookies:
  hash_key: %s
  block_key: %s
  secure: %t
tokens:
  access_ttl: %s
  refresh_ttl: %s
  refresh_idle_ttl: %s
  reuse_grace: %s
  audience: [https://api.example.com]
  profile_claims: [%s]
keys:
  encryption_key: %s
  jwks_max_age: %s
redirects:
  allowed: [https://app.example.com/, %s/demo/]
  default: https://app.example.com/
cors:
  allowed_origins: [https://app.example.com]
signup:
  mode: %s
  fields: [%s]
  terms: %s
demo: %t
%s
providers:
%s`, issuer, ln.Addr(), o.DatabaseURL, Key32, Key32, o.TLS, dur(o.AccessTTL, 10*time.Minute), dur(o.RefreshTTL, 720*time.Hour),
		dur(o.IdleTTL, 168*time.Hour), dur(o.ReuseGrace, 10*time.Second), strings.Join(o.ProfileClaims, ", "), key, dur(o.MaxAge, 10*time.Minute),
		issuer, o.Signup, strings.Join(o.Fields, ", "), or(o.Terms, "[]"), !o.NoDemo, o.Extra, prov)
	cfg, err := config.Parse([]byte(doc), func(string) string { return "" })
	if err != nil {
		t.Fatalf("test config: %v\n%s", err, doc)
	}
	env.Config = cfg
	log := slog.New(slog.NewJSONHandler(env.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(ctx, cfg, app.Options{Logger: log, Now: o.Clock.Now, ProviderTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	env.Store, env.Keys, env.Broker = a.Store, a.Keys, a.Server
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: a.Server.Handler()}}
	if o.TLS {
		hs.StartTLS()
	} else {
		hs.Start()
	}
	t.Cleanup(hs.Close)
	env.Server = hs
	return env
}

func kakaoSync(kind string, terms []fakeidp.ServiceTerm) []fakeidp.ServiceTerm {
	if kind != "kakao" {
		return nil
	}
	return terms
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Client returns a client with its own cookie jar that does not follow
// redirects (tests look at every hop).
func (e *Env) Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	var tr http.RoundTripper // the default, except under TLS
	if e.Server.TLS != nil {
		tr = e.Server.Client().Transport // trusts the test certificate
	}
	return &http.Client{
		Transport:     tr,
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// NewUser creates a user with one identity through the store.
func (e *Env) NewUser(t testing.TB, provider, subject string) string {
	t.Helper()
	u, err := e.Store.CreateUser(context.Background(), storage.NewUser{
		Now: e.Clock.Now(), Profile: map[string]string{"nickname": "user-" + subject},
		Identity: storage.Identity{Provider: provider, Subject: subject},
	})
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// NewSession creates a session for userID through the store and returns
// its refresh token.
func (e *Env) NewSession(t testing.TB, userID string) (token string, sess storage.Session) {
	t.Helper()
	token, hash := broker.NewRefreshToken()
	now := e.Clock.Now()
	sess, err := e.Store.CreateSession(context.Background(), storage.NewSession{
		UserID: userID, IDP: "kakao", TokenHash: hash, Now: now, ExpiresAt: now.Add(e.Config.Tokens.RefreshTTL),
	})
	if err != nil {
		t.Fatal(err)
	}
	return token, sess
}
