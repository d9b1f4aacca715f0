// Package providertest runs providers against the emulators: helpers that
// start an emulator and build the matching provider (Start, Env.Login), and
// the conformance suite every preset passes (Run).
package providertest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"testing"
	"time"

	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/internal/testclock"
	"github.com/socialbroker/broker/providers"
)

// RedirectBase is the broker issuer the helpers configure; the emulators
// register RedirectBase + "/auth/callback/" + name.
const RedirectBase = "https://broker.test"

// Clock is a settable clock shared by a provider and its emulator.
type Clock = testclock.Clock

// NewClock returns a clock at the current time.
func NewClock() *Clock { return testclock.New(time.Now().Truncate(time.Second)) }

// Setup describes one provider under test.
type Setup struct {
	Kind fakeidp.Kind
	// Name is the provider name (default: the kind).
	Name string
	// Discovery leaves google and oidc with only the issuer configured, so
	// their endpoints come from discovery. Otherwise every endpoint override
	// is set from the emulator.
	Discovery bool
	// Scopes replaces the kind's test scopes (see ConfigFor).
	Scopes []string
	// User is who consents (zero: the emulator's default user).
	User fakeidp.User
	// AdminKey (kakao) is set on both the emulator and the config.
	AdminKey string
	// ExtraAudiences go to the emulator and to accept_audiences.
	ExtraAudiences []string
	// Timeout is the registry's per-call timeout (default 5s).
	Timeout time.Duration
	// Configure adjusts the config entry before the registry is built.
	Configure func(map[string]any)
}

func (s Setup) name() string {
	if s.Name != "" {
		return s.Name
	}
	return string(s.Kind)
}

// Env is a running emulator and the provider built against it.
type Env struct {
	Setup    Setup
	Emu      *fakeidp.Emulator
	Clock    *Clock
	Config   map[string]any // the providers entry the registry was built from
	Registry *providers.Registry
	Provider providers.Provider
}

// Start starts an emulator for s.Kind and builds a registry holding one
// provider configured against it. Everything is closed with t.Cleanup.
func Start(t testing.TB, s Setup) *Env {
	t.Helper()
	clock := NewClock()
	name := s.name()
	emu, err := fakeidp.Start(fakeidp.Options{
		Kind:           s.Kind,
		ClientID:       "client-" + name,
		ClientSecret:   "secret-" + name,
		AdminKey:       s.AdminKey,
		RedirectURIs:   []string{RedirectBase + "/auth/callback/" + name},
		ExtraAudiences: s.ExtraAudiences,
		User:           s.User,
		Now:            clock.Now,
		// The id_token faults include tokens naming these URLs.
		AttackerEndpoints: true,
	})
	if err != nil {
		t.Fatalf("fakeidp.Start(%s): %v", s.Kind, err)
	}
	t.Cleanup(emu.Close)

	cfg := emu.ProviderConfig(name, s.Discovery)
	if s.Scopes != nil {
		cfg["scopes"] = s.Scopes
	}
	if s.Configure != nil {
		s.Configure(cfg)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	reg, err := providers.NewRegistry([]providers.Config{providers.ConfigOf(cfg)}, providers.Options{
		RedirectBase: RedirectBase,
		Timeout:      timeout,
		Now:          clock.Now,
	})
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	p, ok := reg.Get(name)
	if !ok {
		t.Fatalf("registry has no provider %q", name)
	}
	return &Env{Setup: s, Emu: emu, Clock: clock, Config: cfg, Registry: reg, Provider: p}
}

// Setting is a string setting of the config entry ("" when unset).
func (e *Env) Setting(key string) string {
	v, _ := e.Config[key].(string)
	return v
}

// Scopes are the config entry's scopes.
func (e *Env) Scopes() []string {
	v, _ := e.Config["scopes"].([]string)
	return v
}

// Login is one authorization at the emulator, ready to be exchanged.
type Login struct {
	State, Nonce, Verifier string
	AuthURL                *url.URL // what AuthCodeURL returned
	Callback               *url.URL // where the emulator sent the browser back
	Code                   string
}

// Exchange is the providers.Exchange of this login.
func (l Login) Exchange() providers.Exchange {
	return providers.Exchange{Code: l.Code, CodeVerifier: l.Verifier, Nonce: l.Nonce, State: l.State}
}

// Authorize does what the broker's login handler and a consenting user do:
// fresh state, nonce and PKCE verifier, AuthCodeURL, consent at the
// emulator. It fails the test when the emulator does not call back with a
// code and the same state.
func (e *Env) Authorize(t testing.TB) Login {
	t.Helper()
	ctx := context.Background()
	l := Login{State: random(), Verifier: random() + random()}
	info := e.Provider.Info()
	if info.Nonce {
		l.Nonce = random()
	}
	challenge := ""
	if info.PKCE {
		challenge = S256(l.Verifier)
	} else {
		l.Verifier = ""
	}
	raw, err := e.Provider.AuthCodeURL(ctx, providers.AuthOptions{State: l.State, Nonce: l.Nonce, CodeChallenge: challenge})
	if err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		t.Fatalf("AuthCodeURL: got %q (%v), want a URL", raw, err)
	}
	l.AuthURL = u
	cb, err := e.Emu.Approve(ctx, raw)
	if err != nil {
		t.Fatalf("Approve: %v", err)
	}
	l.Callback = cb
	q := cb.Query()
	if q.Get("error") != "" {
		t.Fatalf("Approve: callback with error=%s", q.Get("error"))
	}
	if got := q.Get("state"); got != l.State {
		t.Fatalf("callback state: got %q, want %q", got, l.State)
	}
	l.Code = q.Get("code")
	if l.Code == "" {
		t.Fatalf("callback without a code: %s", cb.Redacted())
	}
	return l
}

// Login authorizes and exchanges the code.
func (e *Env) Login(t testing.TB) (providers.Identity, Login, error) {
	t.Helper()
	l := e.Authorize(t)
	id, err := e.Provider.Exchange(context.Background(), l.Exchange())
	return id, l, err
}

// S256 is the PKCE S256 challenge of verifier.
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
