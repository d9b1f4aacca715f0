package providertest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/providers"
)

// DefaultSetups are the five presets, plus google and oidc endpoints found
// by discovery.
func DefaultSetups() []Setup {
	return []Setup{
		{Kind: fakeidp.Kakao},
		{Kind: fakeidp.Naver},
		{Kind: fakeidp.Google},
		{Kind: fakeidp.Google, Name: "google-discovery", Discovery: true},
		{Kind: fakeidp.OIDC},
		{Kind: fakeidp.OIDC, Name: "oidc-discovery", Discovery: true},
		{Kind: fakeidp.OAuth2},
		{Kind: fakeidp.Apple},
	}
}

// IDTokenFaults are every id_token defect the emulator can produce.
var IDTokenFaults = []fakeidp.IDTokenFault{
	fakeidp.BadSignature, fakeidp.WrongAudience, fakeidp.WrongIssuer, fakeidp.WrongNonce,
	fakeidp.MissingNonce, fakeidp.Expired, fakeidp.FutureIssuedAt, fakeidp.AlgNone,
	fakeidp.AlgNoneTitle, fakeidp.AlgNoneUpper, fakeidp.AlgNoneMixed, fakeidp.HS256WithPublicKey,
	fakeidp.AttackerKey, fakeidp.EmbeddedJWK, fakeidp.JKUHeader, fakeidp.X5UHeader,
	fakeidp.UnknownKid, fakeidp.MissingSub, fakeidp.SubMismatch, fakeidp.WrongAZP,
}

// Run is the conformance suite: every setup must pass every case that
// applies to it. Each case runs against its own emulator.
func Run(t *testing.T, setups ...Setup) {
	for _, s := range setups {
		t.Run(s.name(), func(t *testing.T) {
			t.Parallel()
			runCases(t, s)
		})
	}
}

func runCases(t *testing.T, s Setup) {
	t.Run("AuthCodeURL", func(t *testing.T) { t.Parallel(); testAuthCodeURL(t, Start(t, s)) })
	t.Run("HonestLogin", func(t *testing.T) { t.Parallel(); testHonestLogin(t, Start(t, s)) })
	t.Run("ReplayedCode", func(t *testing.T) { t.Parallel(); testReplayedCode(t, Start(t, s)) })
	t.Run("WrongCodeVerifier", func(t *testing.T) { t.Parallel(); testWrongVerifier(t, Start(t, s)) })
	t.Run("Token500", func(t *testing.T) {
		t.Parallel()
		e := Start(t, s)
		e.Emu.SetFaults(fakeidp.Faults{TokenStatus: 500})
		_, l, err := e.Login(t)
		wantCode(t, err, providers.CodeProviderError, l)
		if got := e.Emu.CallCount(e.path(e.Emu.Endpoints().TokenURL)); got != 1 {
			t.Errorf("token requests: got %d, want 1 (no auth-style retry)", got)
		}
	})
	t.Run("TokenHTML200", func(t *testing.T) {
		t.Parallel()
		e := Start(t, s)
		e.Emu.SetFaults(fakeidp.Faults{TokenStatus: 200, TokenBody: "<html><body>maintenance</body></html>"})
		_, l, err := e.Login(t)
		wantCode(t, err, providers.CodeProviderError, l)
	})
	t.Run("TokenTimeout", func(t *testing.T) {
		t.Parallel()
		s := s
		s.Timeout = 300 * time.Millisecond
		e := Start(t, s)
		l := e.Authorize(t)
		e.Emu.SetFaults(fakeidp.Faults{TokenDelay: 10 * time.Second})
		start := time.Now()
		_, err := e.Provider.Exchange(context.Background(), l.Exchange())
		wantCode(t, err, providers.CodeProviderTimeout, l)
		if d := time.Since(start); d > 6*time.Second {
			t.Errorf("Exchange took %v, want about the 300ms timeout", d)
		}
	})
	t.Run("UserinfoTimeout", func(t *testing.T) {
		t.Parallel()
		s := s
		s.Timeout = 300 * time.Millisecond
		e := Start(t, s)
		l := e.Authorize(t)
		e.Emu.SetFaults(fakeidp.Faults{UserinfoDelay: 10 * time.Second})
		_, err := e.Provider.Exchange(context.Background(), l.Exchange())
		if !e.callsUserinfo() {
			if err != nil {
				t.Fatalf("Exchange: %v (no userinfo call expected)", err)
			}
			return
		}
		wantCode(t, err, providers.CodeProviderTimeout, l)
	})
	// Answers that cannot be read: each is a provider_error, wherever it
	// comes (userinfo cases skip presets that read no userinfo).
	for _, c := range []struct {
		name     string
		userinfo bool
		faults   fakeidp.Faults
	}{
		{"HugeBody", false, fakeidp.Faults{HugeBody: true}},
		{"GzipBombToken", false, fakeidp.Faults{GzipBomb: true, BodyFaultsOnly: "token"}},
		{"GzipBombUserinfo", true, fakeidp.Faults{GzipBomb: true, BodyFaultsOnly: "userinfo"}},
		{"ResetToken", false, fakeidp.Faults{Reset: true, BodyFaultsOnly: "token"}},
		{"ResetUserinfo", true, fakeidp.Faults{Reset: true, BodyFaultsOnly: "userinfo"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := Start(t, s)
			if c.userinfo && !e.callsUserinfo() {
				t.Skip("no userinfo endpoint")
			}
			e.Emu.SetFaults(c.faults)
			_, l, err := e.Login(t)
			wantCode(t, err, providers.CodeProviderError, l)
		})
	}
	t.Run("TrickleToken", func(t *testing.T) {
		t.Parallel()
		s := s
		s.Timeout = time.Second
		e := Start(t, s)
		l := e.Authorize(t)
		// 200ms a byte: the token answer would take about a minute.
		e.Emu.SetFaults(fakeidp.Faults{Trickle: 200 * time.Millisecond, BodyFaultsOnly: "token"})
		start := time.Now()
		_, err := e.Provider.Exchange(context.Background(), l.Exchange())
		wantCode(t, err, providers.CodeProviderTimeout, l)
		if d := time.Since(start); d > 6*time.Second {
			t.Errorf("Exchange took %v, want about the 1s timeout", d)
		}
	})
	t.Run("UserinfoEnvelopeFailure", func(t *testing.T) {
		t.Parallel()
		e := Start(t, s)
		if !e.callsUserinfo() {
			t.Skip("no userinfo endpoint")
		}
		f := fakeidp.Faults{UserinfoStatus: 401}
		if s.Kind == fakeidp.Naver {
			f = fakeidp.Faults{UserinfoStatus: 200, UserinfoBody: `{"resultcode":"024","message":"Authentication failed"}`}
		}
		e.Emu.SetFaults(f)
		_, l, err := e.Login(t)
		wantCode(t, err, providers.CodeInvalidResponse, l)
	})
	t.Run("Userinfo503", func(t *testing.T) {
		t.Parallel()
		e := Start(t, s)
		if !e.callsUserinfo() {
			t.Skip("no userinfo endpoint")
		}
		e.Emu.SetFaults(fakeidp.Faults{UserinfoStatus: 503})
		_, l, err := e.Login(t)
		wantCode(t, err, providers.CodeProviderError, l)
	})
	t.Run("IDTokenFaults", func(t *testing.T) {
		t.Parallel()
		if _, ok := Start(t, s).Provider.(providers.IDTokenVerifier); !ok || !usesIDToken(s) {
			t.Skip("no id_token")
		}
		for _, fault := range IDTokenFaults {
			t.Run(string(fault), func(t *testing.T) {
				t.Parallel()
				e := Start(t, s)
				if fault == fakeidp.SubMismatch && !e.callsUserinfo() {
					t.Skip("no userinfo subject to differ from")
				}
				e.Emu.SetFaults(fakeidp.Faults{IDToken: fault})
				id, l, err := e.Login(t)
				if err == nil {
					t.Fatalf("Exchange with %s: got identity %q, want %s", fault, id.Subject, providers.CodeInvalidIDToken)
				}
				wantCode(t, err, providers.CodeInvalidIDToken, l)
				if n := e.Emu.AttackerJWKSFetches(); n != 0 {
					t.Errorf("the attacker's jku/x5u key was fetched %d times, want never", n)
				}
			})
		}
	})
	t.Run("Revoke", func(t *testing.T) { t.Parallel(); testRevoke(t, s) })
}

func testAuthCodeURL(t *testing.T, e *Env) {
	l := e.Authorize(t) // also proves the emulator accepts the request
	q := l.AuthURL.Query()
	ep := e.Emu.Endpoints()
	if want := e.Emu.URL(); !strings.HasPrefix(l.AuthURL.String(), want+"/") {
		t.Errorf("authorize URL %s is not at the emulator %s", l.AuthURL.Redacted(), want)
	}
	if e.Setup.Discovery {
		if n := e.Emu.CallCount("/.well-known/openid-configuration"); n != 1 {
			t.Errorf("discovery fetches: got %d, want 1", n)
		}
	} else if got := l.AuthURL.Scheme + "://" + l.AuthURL.Host + l.AuthURL.Path; got != ep.AuthURL {
		t.Errorf("authorize endpoint: got %s, want %s", got, ep.AuthURL)
	}
	checks := []struct{ param, want string }{
		{"response_type", "code"},
		{"client_id", e.Setting("client_id")},
		{"redirect_uri", RedirectBase + "/auth/callback/" + e.Setting("name")},
		{"state", l.State},
	}
	for _, c := range checks {
		if got := q.Get(c.param); got != c.want {
			t.Errorf("%s: got %q, want %q", c.param, got, c.want)
		}
	}
	wantScope, hasScope := e.wantScope()
	if got, ok := q["scope"]; ok != hasScope || (ok && got[0] != wantScope) {
		t.Errorf("scope: got %q (present %v), want %q (present %v)", q.Get("scope"), ok, wantScope, hasScope)
	}
	wantPKCE := e.Setup.Kind != fakeidp.Naver && e.Setup.Kind != fakeidp.Apple
	if got := q.Get("code_challenge"); (got != "") != wantPKCE || (wantPKCE && got != S256(l.Verifier)) {
		t.Errorf("code_challenge: got %q, want S256 of the verifier: %v", got, wantPKCE)
	}
	if wantPKCE && q.Get("code_challenge_method") != "S256" {
		t.Errorf("code_challenge_method: got %q, want S256", q.Get("code_challenge_method"))
	}
	wantNonce := usesIDToken(e.Setup)
	if got := q.Get("nonce"); (got != "") != wantNonce || (wantNonce && got != l.Nonce) {
		t.Errorf("nonce: got %q, want the login's nonce: %v", got, wantNonce)
	}
	if e.Provider.Info().Nonce != wantNonce {
		t.Errorf("Info().Nonce: got %v, want %v", e.Provider.Info().Nonce, wantNonce)
	}
}

// wantScope is the scope parameter the preset must send.
func (e *Env) wantScope() (string, bool) {
	switch e.Setup.Kind {
	case fakeidp.Naver:
		return "", false
	case fakeidp.Kakao:
		return strings.Join(e.Scopes(), ","), len(e.Scopes()) > 0
	case fakeidp.Google:
		if len(e.Scopes()) == 0 {
			return "openid email profile", true
		}
	case fakeidp.OIDC:
		if len(e.Scopes()) == 0 {
			return "openid profile email", true
		}
	}
	return strings.Join(e.Scopes(), " "), len(e.Scopes()) > 0
}

func usesIDToken(s Setup) bool {
	switch s.Kind {
	case fakeidp.Google, fakeidp.OIDC, fakeidp.Apple:
		return true
	case fakeidp.Kakao:
		return s.Scopes == nil || slices.Contains(s.Scopes, "openid")
	}
	return false
}

func (e *Env) callsUserinfo() bool {
	switch e.Setup.Kind {
	case fakeidp.Google, fakeidp.OIDC:
		return e.Setup.Discovery || e.Setting("userinfo_url") != ""
	case fakeidp.Apple:
		return false // Apple has no userinfo endpoint
	}
	return true
}

func (e *Env) path(absolute string) string {
	return strings.TrimPrefix(absolute, e.Emu.URL())
}

func testHonestLogin(t *testing.T, e *Env) {
	id, l, err := e.Login(t)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	u := e.user()
	want := providers.Identity{Provider: e.Setting("name"), Subject: u.Subject, Email: u.Email, Name: u.Name, Picture: u.Picture}
	switch e.Setup.Kind {
	case fakeidp.Kakao, fakeidp.Naver:
		want.Name = u.Nickname
	case fakeidp.Apple:
		want.Name = "" // the name comes in the posted user, not in the token response
	}
	switch e.Setup.Kind {
	case fakeidp.Kakao, fakeidp.Google, fakeidp.OIDC, fakeidp.Apple:
		want.EmailVerified = u.EmailVerified
	}
	got := id
	got.Grant = providers.Grant{}
	if got != want {
		t.Errorf("identity:\n got  %+v\n want %+v", got, want)
	}
	if id.Grant.AccessToken == "" {
		t.Error("Grant.AccessToken: got empty, want the provider's access token")
	}
	if got := e.Emu.CallCount(e.path(e.Emu.Endpoints().TokenURL)); got != 1 {
		t.Errorf("token requests: got %d, want 1", got)
	}
	if e.Setup.Kind == fakeidp.Naver {
		for _, c := range e.Emu.Calls() {
			if c.Path == e.path(e.Emu.Endpoints().TokenURL) && c.Form.Get("state") != l.State {
				t.Errorf("naver token request state: got %q, want %q", c.Form.Get("state"), l.State)
			}
		}
	}
	// A second honest login works too (cached discovery and keys).
	if _, _, err := e.Login(t); err != nil {
		t.Errorf("second login: %v", err)
	}
}

func (e *Env) user() fakeidp.User {
	if e.Setup.User != (fakeidp.User{}) {
		return e.Setup.User
	}
	// The emulator's default users, see emulator.defaultUser.
	switch e.Setup.Kind {
	case fakeidp.Kakao:
		return fakeidp.User{Subject: "3012345678", Email: "ryan@kakao.example", EmailVerified: true, Nickname: "라이언", Name: "김라이언", Picture: "https://k.kakaocdn.example/dn/ryan/img_640x640.jpg"}
	case fakeidp.Naver:
		return fakeidp.User{Subject: "Wb3xq0kZt8cF1rPq5Jm0y7u4sLdE6aHnVgXo9iKc2Qs", Email: "minji@naver.example", EmailVerified: true, Nickname: "민지", Name: "이민지", Picture: "https://phinf.pstatic.example/profile/minji.png"}
	case fakeidp.Google:
		return fakeidp.User{Subject: "108123456789012345678", Email: "alice@gmail.example", EmailVerified: true, Nickname: "alice", Name: "Alice Example", Picture: "https://lh3.googleusercontent.example/a/alice=s96-c"}
	case fakeidp.OIDC:
		return fakeidp.User{Subject: "f2b6c1d0-6a55-4a8e-9c1e-4d1f0b8a7e21", Email: "bob@oidc.example", EmailVerified: true, Nickname: "bob", Name: "Bob Example", Picture: "https://oidc.example/avatars/bob.png"}
	case fakeidp.Apple:
		return fakeidp.User{Subject: "001234.5f1c2e3d4b5a69788796a5b4c3d2e1f0.1234", Email: "q8x2k7m4pz@privaterelay.appleid.com", EmailVerified: true, Name: "Alex Appleseed"}
	default:
		return fakeidp.User{Subject: "42", Email: "carol@gitea.example", EmailVerified: true, Nickname: "carol", Name: "Carol Example", Picture: "https://gitea.example/avatars/carol"}
	}
}

func testReplayedCode(t *testing.T, e *Env) {
	l := e.Authorize(t)
	if _, err := e.Provider.Exchange(context.Background(), l.Exchange()); err != nil {
		t.Fatalf("first Exchange: %v", err)
	}
	_, err := e.Provider.Exchange(context.Background(), l.Exchange())
	wantCode(t, err, providers.CodeInvalidGrant, l)
}

func testWrongVerifier(t *testing.T, e *Env) {
	if !e.Provider.Info().PKCE {
		t.Skip("no PKCE")
	}
	l := e.Authorize(t)
	ex := l.Exchange()
	ex.CodeVerifier = random() + random()
	_, err := e.Provider.Exchange(context.Background(), ex)
	wantCode(t, err, providers.CodeInvalidGrant, l)
	// The code is burnt even by a failed attempt; the right verifier is refused too.
	_, err = e.Provider.Exchange(context.Background(), l.Exchange())
	wantCode(t, err, providers.CodeInvalidGrant, l)
}

func testRevoke(t *testing.T, s Setup) {
	if s.Kind == fakeidp.Kakao {
		s.AdminKey = "" // the Bearer path here; the admin path has its own test
	}
	e := Start(t, s)
	rv, ok := e.Provider.(providers.Revoker)
	if !ok {
		t.Skip("not a Revoker")
	}
	id, _, err := e.Login(t)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	err = rv.Revoke(context.Background(), id.Subject, id.Grant)
	if e.Emu.Endpoints().RevokeURL == "" {
		if !errors.Is(err, providers.ErrRevokeUnsupported) {
			t.Fatalf("Revoke without an endpoint: got %v, want ErrRevokeUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if n := e.Emu.CallCount(e.path(e.Emu.Endpoints().RevokeURL)); n != 1 {
		t.Errorf("revoke requests: got %d, want 1", n)
	}
	// The grant is gone: a second login's tokens still work, the first's not.
	e.Emu.SetFaults(fakeidp.Faults{RevokeStatus: 503})
	id2, _, err := e.Login(t)
	if err != nil {
		t.Fatalf("second login: %v", err)
	}
	var pe *providers.Error
	err = rv.Revoke(context.Background(), id2.Subject, id2.Grant)
	if !errors.As(err, &pe) || pe.Code != providers.CodeProviderError {
		t.Errorf("Revoke against a 503: got %v, want %s", err, providers.CodeProviderError)
	}
}

// wantCode fails unless err is a *providers.Error with code want whose text
// carries neither the authorization code nor the PKCE verifier.
func wantCode(t *testing.T, err error, want string, l Login) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error: got %v (%T), want *providers.Error %s", err, err, want)
	}
	if pe.Code != want {
		t.Errorf("error code: got %s (%v), want %s", pe.Code, err, want)
	}
	msg := err.Error()
	for _, secret := range []string{l.Code, l.Verifier, l.Nonce} {
		if secret != "" && strings.Contains(msg, secret) {
			t.Errorf("error text %q leaks a secret of the login", msg)
		}
	}
}
