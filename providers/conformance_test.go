package providers_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/providers/providertest"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.DefaultSetups()...)
}

func code(err error) string {
	if err == nil {
		return "<nil>"
	}
	var pe *providers.Error
	if !errors.As(err, &pe) {
		return "not a *providers.Error: " + err.Error()
	}
	return pe.Code
}

// oidcKinds issue id_tokens verified against a JWKS.
var oidcKinds = []providertest.Setup{
	{Kind: fakeidp.Kakao},
	{Kind: fakeidp.Google},
	{Kind: fakeidp.OIDC, Discovery: true},
}

// An unknown kid triggers one JWKS refetch per 10s however many tokens name
// it; after RotateKey, the new kid verifies after one refetch.
func TestJWKSRefetchCooldown(t *testing.T) {
	for _, s := range oidcKinds {
		t.Run(string(s.Kind), func(t *testing.T) {
			t.Parallel()
			e := providertest.Start(t, s)
			if _, _, err := e.Login(t); err != nil {
				t.Fatalf("honest login: %v", err)
			}
			if got := e.Emu.JWKSFetches(); got != 1 {
				t.Fatalf("JWKS fetches after the first login: got %d, want 1", got)
			}

			e.Clock.Advance(11 * time.Second)
			e.Emu.SetFaults(fakeidp.Faults{IDToken: fakeidp.UnknownKid})
			for i := range 3 {
				if _, _, err := e.Login(t); code(err) != providers.CodeInvalidIDToken {
					t.Fatalf("unknown kid login %d: got %s, want %s", i, code(err), providers.CodeInvalidIDToken)
				}
			}
			if got := e.Emu.JWKSFetches(); got != 2 {
				t.Errorf("JWKS fetches after 3 unknown-kid tokens within 10s: got %d, want 2 (one refetch)", got)
			}

			// The provider rotates: honest tokens now carry the new kid. Within
			// the cooldown they cannot be verified yet…
			e.Emu.SetFaults(fakeidp.Faults{})
			e.Emu.RotateKey()
			e.Clock.Advance(5 * time.Second)
			if _, _, err := e.Login(t); code(err) != providers.CodeInvalidIDToken {
				t.Errorf("new kid 5s after a refetch: got %s, want %s", code(err), providers.CodeInvalidIDToken)
			}
			// …and once it has passed, one refetch picks the new key up.
			e.Clock.Advance(6 * time.Second)
			id, _, err := e.Login(t)
			if err != nil {
				t.Fatalf("new kid after the cooldown: %v", err)
			}
			if got := e.Emu.JWKSFetches(); got != 3 {
				t.Errorf("JWKS fetches: got %d, want 3", got)
			}
			if id.Subject == "" {
				t.Error("empty subject")
			}
			if _, _, err := e.Login(t); err != nil {
				t.Fatalf("login with cached new key: %v", err)
			}
			if got := e.Emu.JWKSFetches(); got != 3 {
				t.Errorf("JWKS fetches after a login with a known kid: got %d, want 3", got)
			}
		})
	}
}

// Concurrent verifications of unknown-kid tokens share one fetch.
func TestJWKSConcurrentRefetch(t *testing.T) {
	e := providertest.Start(t, providertest.Setup{Kind: fakeidp.Google})
	v := e.Provider.(providers.IDTokenVerifier)
	if _, err := v.VerifyIDToken(context.Background(), e.Emu.MintIDToken(nil), ""); err != nil {
		t.Fatalf("honest token: %v", err)
	}
	e.Clock.Advance(time.Minute)
	e.Emu.SetFaults(fakeidp.Faults{IDToken: fakeidp.UnknownKid})
	tok := e.Emu.MintIDToken(nil)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := v.VerifyIDToken(context.Background(), tok, ""); code(err) != providers.CodeInvalidIDToken {
				t.Errorf("unknown kid: got %s, want %s", code(err), providers.CodeInvalidIDToken)
			}
		})
	}
	wg.Wait()
	if got := e.Emu.JWKSFetches(); got != 2 {
		t.Errorf("JWKS fetches: got %d, want 2", got)
	}
}

func TestKakaoWithoutOpenID(t *testing.T) {
	e := providertest.Start(t, providertest.Setup{
		Kind:   fakeidp.Kakao,
		Scopes: []string{"profile_nickname"},
		User:   fakeidp.User{Subject: "3012345678", Nickname: "라이언", Email: "ryan@kakao.example", EmailVerified: true},
	})
	if e.Provider.Info().Nonce {
		t.Error("Info().Nonce: got true, want false without openid")
	}
	id, l, err := e.Login(t)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if got := l.AuthURL.Query().Get("scope"); got != "profile_nickname" {
		t.Errorf("scope: got %q, want profile_nickname", got)
	}
	if l.AuthURL.Query().Has("nonce") {
		t.Error("nonce sent without openid")
	}
	want := providers.Identity{Provider: "kakao", Subject: "3012345678", Name: "라이언"}
	id.Grant = providers.Grant{}
	if id != want {
		t.Errorf("identity: got %+v, want %+v (no email without account_email)", id, want)
	}
	if n := e.Emu.JWKSFetches(); n != 0 {
		t.Errorf("JWKS fetches: got %d, want 0", n)
	}
}

func TestKakaoSubjectBeyondFloat(t *testing.T) {
	const big = "9007199254740993" // 2^53 + 1: a float64 would make it ...992
	e := providertest.Start(t, providertest.Setup{Kind: fakeidp.Kakao, User: fakeidp.User{Subject: big, Nickname: "n"}})
	id, _, err := e.Login(t)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if id.Subject != big {
		t.Errorf("subject: got %q, want %q", id.Subject, big)
	}
	// Same through the generic oauth2 preset's claim paths.
	e2 := providertest.Start(t, providertest.Setup{Kind: fakeidp.OAuth2, User: fakeidp.User{Subject: big, Name: "n"}})
	id, _, err = e2.Login(t)
	if err != nil {
		t.Fatalf("oauth2 Exchange: %v", err)
	}
	if id.Subject != big {
		t.Errorf("oauth2 subject: got %q, want %q", id.Subject, big)
	}
}

func TestKakaoVerifyIDTokenNativeAudience(t *testing.T) {
	e := providertest.Start(t, providertest.Setup{Kind: fakeidp.Kakao, ExtraAudiences: []string{"native-app-key"}})
	v := e.Provider.(providers.IDTokenVerifier)
	ctx := context.Background()
	id, err := v.VerifyIDToken(ctx, e.Emu.MintIDToken(map[string]any{"aud": "native-app-key", "nickname": "라이언", "email": "r@k.example"}), "")
	if err != nil {
		t.Fatalf("native-app id_token: %v", err)
	}
	if id.Subject != "3012345678" || id.Name != "라이언" || id.Email != "r@k.example" || id.EmailVerified {
		t.Errorf("identity: got %+v", id)
	}
	if _, err := v.VerifyIDToken(ctx, e.Emu.MintIDToken(map[string]any{"aud": "someone-else"}), ""); code(err) != providers.CodeInvalidIDToken {
		t.Errorf("foreign audience: got %s, want %s", code(err), providers.CodeInvalidIDToken)
	}
	if _, err := v.VerifyIDToken(ctx, e.Emu.MintIDToken(map[string]any{"aud": []string{"client-kakao", "someone-else"}, "azp": "someone-else"}), ""); code(err) != providers.CodeInvalidIDToken {
		t.Errorf("azp of another party: got %s, want %s", code(err), providers.CodeInvalidIDToken)
	}
	if _, err := v.VerifyIDToken(ctx, e.Emu.MintIDToken(map[string]any{"nonce": "n1"}), "n2"); code(err) != providers.CodeInvalidIDToken {
		t.Errorf("nonce mismatch: got %s, want %s", code(err), providers.CodeInvalidIDToken)
	}
	if _, err := v.VerifyIDToken(ctx, e.Emu.MintIDToken(map[string]any{"nonce": "n1"}), "n1"); err != nil {
		t.Errorf("matching nonce: %v", err)
	}
	e.Clock.Advance(30 * time.Second)
	if _, err := v.VerifyIDToken(ctx, e.Emu.MintIDToken(map[string]any{"iat": e.Clock.Now().Add(50 * time.Second).Unix()}), ""); err != nil {
		t.Errorf("iat 50s ahead (within skew): %v", err)
	}
	if _, err := v.VerifyIDToken(ctx, "not.a.jwt", ""); code(err) != providers.CodeInvalidIDToken {
		t.Errorf("garbage: got %s, want %s", code(err), providers.CodeInvalidIDToken)
	}
}

func TestKakaoRevokeWithAdminKey(t *testing.T) {
	e := providertest.Start(t, providertest.Setup{Kind: fakeidp.Kakao, AdminKey: "admin-key-1"})
	id, _, err := e.Login(t)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	rv := e.Provider.(providers.Revoker)
	if err := rv.Revoke(context.Background(), id.Subject, providers.Grant{}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	var unlink *fakeidp.Call
	for _, c := range e.Emu.Calls() {
		if c.Path == "/v1/user/unlink" {
			unlink = &c
		}
	}
	if unlink == nil {
		t.Fatal("no unlink call")
	}
	if unlink.Authorization != "KakaoAK admin-key-1" || unlink.Form.Get("target_id_type") != "user_id" || unlink.Form.Get("target_id") != id.Subject {
		t.Errorf("unlink call: got %q %v", unlink.Authorization, unlink.Form)
	}
	// Unlinking again: Kakao says the user is not linked; nothing to retry.
	if err := rv.Revoke(context.Background(), id.Subject, providers.Grant{}); code(err) != providers.CodeInvalidGrant {
		t.Errorf("second unlink: got %s, want %s", code(err), providers.CodeInvalidGrant)
	}
}

func TestNaverRevokeForm(t *testing.T) {
	e := providertest.Start(t, providertest.Setup{Kind: fakeidp.Naver})
	id, _, err := e.Login(t)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if err := e.Provider.(providers.Revoker).Revoke(context.Background(), id.Subject, id.Grant); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	for _, c := range e.Emu.Calls() {
		if c.Path != "/oauth2.0/revoke" {
			continue
		}
		f := c.Form
		if c.Method != "POST" || f.Get("client_id") != "client-naver" || f.Get("client_secret") != "secret-naver" ||
			f.Get("token") != id.Grant.AccessToken || f.Get("token_type_hint") != "access_token" {
			t.Errorf("revoke call: got %s %v", c.Method, f)
		}
		return
	}
	t.Error("no revoke call")
}

// Discovery never runs at boot, a failure is not cached, and a later login
// succeeds once the provider is up.
func TestDiscoveryLazyAndRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	issuer := "http://" + addr
	clock := providertest.NewClock()
	reg, err := providers.NewRegistry([]providers.Config{providers.ConfigOf(map[string]any{"name": "acme", "type": "oidc", "issuer": issuer, "client_id": "client-acme", "client_secret": "secret-acme"})},
		providers.Options{RedirectBase: providertest.RedirectBase, Timeout: 2 * time.Second, Now: clock.Now})
	if err != nil {
		t.Fatalf("NewRegistry with the issuer down: %v", err)
	}
	p, _ := reg.Get("acme")
	got, err := p.AuthCodeURL(context.Background(), providers.AuthOptions{State: "s", Nonce: "n"})
	if code(err) != providers.CodeProviderError || got != "" {
		t.Fatalf("AuthCodeURL with the issuer down: got %q, %s; want \"\", %s", got, code(err), providers.CodeProviderError)
	}

	emu, err := fakeidp.Start(fakeidp.Options{Kind: fakeidp.OIDC, ClientID: "client-acme", ClientSecret: "secret-acme", Addr: addr,
		RedirectURIs: []string{providertest.RedirectBase + "/auth/callback/acme"}, Now: clock.Now})
	if err != nil {
		t.Fatalf("emulator on %s: %v", addr, err)
	}
	defer emu.Close()
	u, err := p.AuthCodeURL(context.Background(), providers.AuthOptions{State: "state-1", Nonce: "nonce-1", CodeChallenge: providertest.S256(strings.Repeat("v", 43))})
	if err != nil {
		t.Fatalf("AuthCodeURL with the issuer up: %v", err)
	}
	cb, err := emu.Approve(context.Background(), u)
	if err != nil {
		t.Fatalf("Approve: %v", err)
	}
	id, err := p.Exchange(context.Background(), providers.Exchange{Code: cb.Query().Get("code"), CodeVerifier: strings.Repeat("v", 43), Nonce: "nonce-1", State: "state-1"})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if id.Subject == "" {
		t.Error("empty subject")
	}
	if n := emu.CallCount("/.well-known/openid-configuration"); n != 1 {
		t.Errorf("discovery fetches: got %d, want 1 (cached)", n)
	}
	// Revocation through the discovered revocation_endpoint.
	if err := p.(providers.Revoker).Revoke(context.Background(), id.Subject, id.Grant); err != nil {
		t.Errorf("Revoke: %v", err)
	}
	if n := emu.CallCount("/revoke"); n != 1 {
		t.Errorf("revoke calls: got %d, want 1", n)
	}
}

func TestOIDCStaticEndpointsSkipDiscovery(t *testing.T) {
	for _, kind := range []fakeidp.Kind{fakeidp.Google, fakeidp.OIDC} {
		e := providertest.Start(t, providertest.Setup{Kind: kind})
		if _, _, err := e.Login(t); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if n := e.Emu.CallCount("/.well-known/openid-configuration"); n != 0 {
			t.Errorf("%s: discovery fetches: got %d, want 0 with every endpoint configured", kind, n)
		}
	}
}

func TestOAuth2SuccessCheck(t *testing.T) {
	for _, tt := range []struct {
		equals string
		want   string
	}{
		{"carol", ""},
		{"someone-else", providers.CodeInvalidResponse},
	} {
		e := providertest.Start(t, providertest.Setup{Kind: fakeidp.OAuth2, Configure: func(c map[string]any) {
			c["success"] = map[string]any{"path": "login", "equals": tt.equals}
		}})
		_, _, err := e.Login(t)
		if got := code(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
			t.Errorf("success check login == %q: got %v, want %q", tt.equals, err, tt.want)
		}
	}
}

func TestOAuth2WithoutPKCE(t *testing.T) {
	e := providertest.Start(t, providertest.Setup{Kind: fakeidp.OAuth2, Configure: func(c map[string]any) { delete(c, "pkce") }})
	if e.Provider.Info().PKCE {
		t.Fatal("Info().PKCE: got true, want false by default")
	}
	id, l, err := e.Login(t)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if l.AuthURL.Query().Has("code_challenge") {
		t.Error("code_challenge sent with PKCE off")
	}
	if id.Subject != "42" || id.Email != "carol@gitea.example" || id.Name != "Carol Example" || id.EmailVerified {
		t.Errorf("identity: got %+v", id)
	}
}

// An Exchange for an openid login without the nonce to check is refused
// before any network call.
func TestExchangeRequiresNonce(t *testing.T) {
	for _, s := range oidcKinds {
		e := providertest.Start(t, s)
		l := e.Authorize(t)
		ex := l.Exchange()
		ex.Nonce = ""
		if _, err := e.Provider.Exchange(context.Background(), ex); code(err) != providers.CodeInvalidIDToken {
			t.Errorf("%s: got %s, want %s", s.Kind, code(err), providers.CodeInvalidIDToken)
		}
	}
}

// Tokens that bring their own key (an embedded jwk, a jku or x5u URL) or an
// attacker's key under the real kid are refused, and do not trigger a JWKS
// refetch: only keys from the provider's JWKS count.
func TestForgedHeaderKeysRefused(t *testing.T) {
	e := providertest.Start(t, providertest.Setup{Kind: fakeidp.Kakao})
	v := e.Provider.(providers.IDTokenVerifier)
	ctx := context.Background()
	honest := e.Emu.MintIDToken(nil)
	if _, err := v.VerifyIDToken(ctx, honest, ""); err != nil {
		t.Fatalf("honest token: %v", err)
	}
	hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(honest, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil || h.Kid == "" {
		t.Fatalf("honest token header %s: no kid", hdr)
	}
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := e.Clock.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": e.Emu.URL(), "aud": "client-kakao", "sub": "3012345678",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	variants := map[string]*jose.SignerOptions{
		"embedded jwk": (&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", h.Kid),
		"jku":          (&jose.SignerOptions{}).WithHeader("kid", h.Kid).WithHeader("jku", "https://attacker.example/jwks.json"),
		"x5u":          (&jose.SignerOptions{}).WithHeader("kid", h.Kid).WithHeader("x5u", "https://attacker.example/cert.pem"),
		"no kid":       &jose.SignerOptions{},
	}
	for name, opts := range variants {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: attacker}, opts)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := signer.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyIDToken(ctx, tok, ""); code(err) != providers.CodeInvalidIDToken {
			t.Errorf("%s: got %s, want %s", name, code(err), providers.CodeInvalidIDToken)
		}
	}
	if got := e.Emu.JWKSFetches(); got != 1 {
		t.Errorf("JWKS fetches: got %d, want 1 (a known kid with a bad signature is final)", got)
	}
}

// A revocation refused because of the app's own credentials (a wrong admin
// key or client secret: invalid_client, or Kakao's -401 to the admin key)
// is a configuration problem: retried later, never mistaken for "nothing
// to revoke". A refused user token is the grant already gone: dropped.
func TestRevokeCredentialsRefusedIsRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	userGrant := func(id providers.Identity) providers.Grant { return id.Grant }
	for _, c := range []struct {
		setup providertest.Setup
		fault fakeidp.Faults
		grant func(providers.Identity) providers.Grant
		want  string
	}{
		{providertest.Setup{Kind: fakeidp.Kakao, AdminKey: "admin-key-1"}, fakeidp.Faults{RevokeStatus: 401}, nil, providers.CodeProviderError},
		{providertest.Setup{Kind: fakeidp.Naver}, fakeidp.Faults{RevokeStatus: 200, RevokeBody: `{"error":"invalid_client","error_description":"bad client"}`}, userGrant, providers.CodeProviderError},
		{providertest.Setup{Kind: fakeidp.OIDC}, fakeidp.Faults{RevokeStatus: 401, RevokeBody: `{"error":"invalid_client"}`}, userGrant, providers.CodeProviderError},
		{providertest.Setup{Kind: fakeidp.OIDC}, fakeidp.Faults{RevokeStatus: 400, RevokeBody: `{"error":"unauthorized_client"}`}, userGrant, providers.CodeProviderError},
		// The user's own token refused: the grant is already gone.
		{providertest.Setup{Kind: fakeidp.Kakao}, fakeidp.Faults{RevokeStatus: 401}, userGrant, providers.CodeInvalidGrant},
		{providertest.Setup{Kind: fakeidp.Kakao, AdminKey: "admin-key-1"}, fakeidp.Faults{RevokeStatus: 400, RevokeBody: `{"msg":"NotRegisteredUserException","code":-101}`}, nil, providers.CodeInvalidGrant},
		{providertest.Setup{Kind: fakeidp.Naver}, fakeidp.Faults{RevokeStatus: 401}, userGrant, providers.CodeInvalidGrant},
		{providertest.Setup{Kind: fakeidp.Google}, fakeidp.Faults{RevokeStatus: 400}, userGrant, providers.CodeInvalidGrant},
		{providertest.Setup{Kind: fakeidp.OIDC}, fakeidp.Faults{RevokeStatus: 401}, userGrant, providers.CodeInvalidGrant},
	} {
		e := providertest.Start(t, c.setup)
		id, _, err := e.Login(t)
		if err != nil {
			t.Fatalf("%s: Exchange: %v", c.setup.Kind, err)
		}
		var g providers.Grant
		if c.grant != nil {
			g = c.grant(id)
		}
		rv := e.Provider.(providers.Revoker)
		e.Emu.SetFaults(c.fault)
		if err := rv.Revoke(ctx, id.Subject, g); code(err) != c.want {
			t.Errorf("%s admin=%v %+v: got %s (%v), want %s", c.setup.Kind, c.setup.AdminKey != "", c.fault, code(err), err, c.want)
		}
		e.Emu.SetFaults(fakeidp.Faults{})
		if c.want == providers.CodeProviderError { // the retry succeeds once the provider accepts
			if err := rv.Revoke(ctx, id.Subject, g); err != nil {
				t.Errorf("%s: retry after the fault: %v", c.setup.Kind, err)
			}
		}
	}
}
