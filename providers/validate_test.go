package providers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNewRegistryReportsEveryProblem(t *testing.T) {
	type m = map[string]any
	cfgs := []Config{
		ConfigOf(m{"name": "kakao", "type": "kakao", "client_id": "k", "scopes": []string{"openid", "profile_nickname"}, "admin_key": "admin"}),                              // ok
		ConfigOf(m{"name": "kakao", "type": "kakao", "client_id": "k2"}),                                                                                                     // 1: duplicate name
		ConfigOf(m{"name": "Bad Name", "type": "naver", "client_id": "n", "client_secret": "s"}),                                                                             // 2: invalid name
		ConfigOf(m{"name": "x", "type": "facebook", "client_id": "f"}),                                                                                                       // 3: unknown type
		ConfigOf(m{"name": "google", "type": "google", "auth_url": "ftp://example.com/auth", "token_url": "/relative"}),                                                      // 4: client_id, auth_url, token_url
		ConfigOf(m{"name": "gitea", "type": "oauth2", "client_id": "g", "claims": m{"email": "email", "avatar": "x"}, "pkce": true}),                                         // 5: urls, claims.subject, claims.avatar
		ConfigOf(m{"name": "acme", "type": "oidc", "client_id": "a", "admin_key": "nope", "claims": m{"subject": "sub"}}),                                                    // 6: issuer, admin_key, claims
		ConfigOf(m{"name": "", "type": "naver", "client_id": "n7", "client_secret": "s", "scopes": []string{"profile"}, "success": m{"path": "resultcode", "equals": "00"}}), // 7: name, success, scopes
		ConfigOf(m{"name": "kakao2", "type": "kakao", "client_id": "k8", "scopes": []string{"openid,profile_nickname"}, "revoke_url": "https://user:pw@kapi.x/u"}),           // 8: scopes[0], revoke_url
		ConfigOf(m{"name": "naver2", "type": "naver", "client_id": "n", "client_secret": "s", "issuer": "https://nid.naver.com", "jwks_url": "https://x.example/jwks"}),      // 9: issuer, jwks_url (no id_token)
		ConfigOf(m{"name": "kakao3", "type": "kakao", "client_id": "k"}),                                                                                                     // 10: the client of providers[0] again
	}
	_, err := NewRegistry(cfgs, Options{RedirectBase: "https://auth.example.com"})
	if err == nil {
		t.Fatal("NewRegistry: got no error, want several")
	}
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *ConfigError
		if !errors.As(e, &ce) {
			t.Fatalf("error %v is not a *ConfigError", e)
		}
		keys = append(keys, ce.Key)
	}
	want := []string{
		"providers[1].name",
		"providers[2].name",
		"providers[3].type",
		"providers[4].client_id", "providers[4].client_secret", "providers[4].auth_url", "providers[4].token_url",
		"providers[5].auth_url", "providers[5].token_url", "providers[5].userinfo_url", "providers[5].claims.subject", "providers[5].claims.avatar",
		"providers[6].claims", "providers[6].admin_key", "providers[6].issuer",
		"providers[7].name", "providers[7].success", "providers[7].scopes",
		"providers[8].revoke_url", "providers[8].scopes[0]",
		"providers[9].issuer", "providers[9].jwks_url",
		"providers[10].client_id",
	}
	slices.Sort(keys)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys:\n got  %q\n want %q\nfull error:\n%v", keys, want, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "pw@") {
		t.Errorf("error leaks URL credentials: %v", msg)
	}
	for _, frag := range []string{`duplicate name "kakao"`, `unknown type "facebook"`, "providers[6].admin_key: unknown key for type oidc"} {
		if !strings.Contains(msg, frag) {
			t.Errorf("error %q does not mention %q", msg, frag)
		}
	}
}

func TestNewRegistryOK(t *testing.T) {
	type m = map[string]any
	cfgs := []Config{
		ConfigOf(m{"name": "kakao", "type": "kakao", "client_id": "k", "scopes": []string{"openid", "profile_nickname"}}),
		ConfigOf(m{"name": "naver", "type": "naver", "client_id": "n", "client_secret": "ns"}),
		ConfigOf(m{"name": "google", "type": "google", "client_id": "g", "client_secret": "gs"}),
		ConfigOf(m{"name": "acme", "type": "oidc", "client_id": "a", "issuer": "https://id.acme.example"}),
		ConfigOf(m{"name": "gitea", "type": "oauth2", "client_id": "g", "auth_url": "https://git.example/login/oauth/authorize", "token_url": "https://git.example/login/oauth/access_token",
			"userinfo_url": "https://git.example/api/v1/user", "claims": m{"subject": "id", "email": "email"}}),
	}
	r, err := NewRegistry(cfgs, Options{RedirectBase: "https://auth.example.com/"})
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	var names []string
	for _, p := range r.All() {
		names = append(names, p.Info().Name)
	}
	if want := []string{"kakao", "naver", "google", "acme", "gitea"}; !slices.Equal(names, want) {
		t.Errorf("All: got %v, want %v", names, want)
	}
	p, ok := r.Get("naver")
	if !ok || p.Info().Type != "naver" || p.Info().DisplayName != "Naver" {
		t.Errorf("Get(naver): got %v %v", p, ok)
	}
	if _, ok := r.Get("nope"); ok {
		t.Error("Get(nope): got ok, want not found")
	}
	// Production defaults, no network at boot.
	k, _ := r.Get("kakao")
	if got, _ := k.AuthCodeURL(context.Background(), AuthOptions{State: "s", Nonce: "n", CodeChallenge: "c"}); !strings.HasPrefix(got, kakaoAuthURL+"?") ||
		!strings.Contains(got, "redirect_uri=https%3A%2F%2Fauth.example.com%2Fauth%2Fcallback%2Fkakao&") {
		t.Errorf("kakao AuthCodeURL: got %s", got)
	}
	for _, name := range []string{"kakao", "google", "acme"} {
		p, _ := r.Get(name)
		if _, ok := p.(IDTokenVerifier); !ok {
			t.Errorf("%s: not an IDTokenVerifier", name)
		}
	}
	for _, name := range []string{"naver", "gitea"} {
		p, _ := r.Get(name)
		if _, ok := p.(IDTokenVerifier); ok {
			t.Errorf("%s: is an IDTokenVerifier, want not", name)
		}
	}
}
