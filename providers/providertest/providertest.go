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

	"github.com/socialbroker/broker/internal/testclock"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/providers/emulator"
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
	Kind emulator.Kind
	// Name is the provider name (default: the kind).
	Name string
	// Discovery leaves google and oidc with only the issuer configured, so
	// their endpoints come from discovery. Otherwise every endpoint override
	// is set from the emulator.
	Discovery bool
	// Scopes replaces the kind's test scopes (see ConfigFor).
	Scopes []string
	// User is who consents (zero: the emulator's default user).
	User emulator.User
	// AdminKey (kakao) is set on both the emulator and the config.
	AdminKey string
	// ExtraAudiences go to the emulator and to accept_audiences.
	ExtraAudiences []string
	// Timeout is the registry's per-call timeout (default 5s).
	Timeout time.Duration
	// Configure adjusts the config before the registry is built.
	Configure func(*providers.Config)
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
	Emu      *emulator.Emulator
	Clock    *Clock
	Config   providers.Config
	Registry *providers.Registry
	Provider providers.Provider
}

// Start starts an emulator for s.Kind and builds a registry holding one
// provider configured against it. Everything is closed with t.Cleanup.
func Start(t testing.TB, s Setup) *Env {
	t.Helper()
	clock := NewClock()
	name := s.name()
	emu, err := emulator.Start(emulator.Options{
		Kind:           s.Kind,
		ClientID:       "client-" + name,
		ClientSecret:   "secret-" + name,
		AdminKey:       s.AdminKey,
		RedirectURIs:   []string{RedirectBase + "/auth/callback/" + name},
		ExtraAudiences: s.ExtraAudiences,
		User:           s.User,
		Now:            clock.Now,
	})
	if err != nil {
		t.Fatalf("emulator.Start(%s): %v", s.Kind, err)
	}
	t.Cleanup(emu.Close)

	cfg := ConfigFor(name, s.Kind, emu, s.Discovery)
	cfg.ClientID, cfg.ClientSecret = "client-"+name, "secret-"+name
	if s.Scopes != nil {
		cfg.Scopes = s.Scopes
	}
	cfg.AdminKey = s.AdminKey
	cfg.AcceptAudiences = s.ExtraAudiences
	if s.Configure != nil {
		s.Configure(&cfg)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	reg, err := providers.NewRegistry([]providers.Config{cfg}, providers.Options{
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

// ConfigFor is the providers.Config of a provider named name against emu
// (client credentials left empty). Test scopes: kakao [openid,
// profile_nickname, profile_image, account_email]; oauth2 [read:user]
// with PKCE on and claims {subject: id, email: email, name: full_name,
// picture: avatar_url}; the others their preset defaults. With discovery,
// google and oidc get only their issuer.
func ConfigFor(name string, kind emulator.Kind, emu *emulator.Emulator, discovery bool) providers.Config {
	ep := emu.Endpoints()
	cfg := providers.Config{
		Name:        name,
		Type:        string(kind),
		AuthURL:     ep.AuthURL,
		TokenURL:    ep.TokenURL,
		UserinfoURL: ep.UserinfoURL,
		Issuer:      ep.Issuer,
		JWKSURL:     ep.JWKSURL,
		RevokeURL:   ep.RevokeURL,
	}
	switch kind {
	case emulator.Kakao:
		cfg.Scopes = []string{"openid", "profile_nickname", "profile_image", "account_email"}
	case emulator.Google, emulator.OIDC:
		if discovery {
			cfg = providers.Config{Name: name, Type: string(kind), Issuer: ep.Issuer}
		}
	case emulator.OAuth2:
		yes := true
		cfg.Scopes = []string{"read:user"}
		cfg.PKCE = &yes
		cfg.Claims = map[string]string{"subject": "id", "email": "email", "name": "full_name", "picture": "avatar_url"}
	}
	return cfg
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
	if pp, ok := e.Provider.(providers.Preparer); ok {
		if err := pp.Prepare(ctx); err != nil {
			t.Fatalf("Prepare: %v", err)
		}
	}
	l := Login{State: random(), Verifier: random() + random()}
	if e.Provider.UsesNonce() {
		l.Nonce = random()
	}
	challenge := ""
	if e.Provider.UsesPKCE() {
		challenge = S256(l.Verifier)
	} else {
		l.Verifier = ""
	}
	raw := e.Provider.AuthCodeURL(l.State, l.Nonce, challenge)
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
