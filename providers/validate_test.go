package providers

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNewRegistryReportsEveryProblem(t *testing.T) {
	yes := true
	cfgs := []Config{
		{Name: "kakao", Type: "kakao", ClientID: "k", Scopes: []string{"openid", "profile_nickname"}, AdminKey: "admin"},                   // ok
		{Name: "kakao", Type: "kakao", ClientID: "k2"},                                                                                     // 1: duplicate name
		{Name: "Bad Name", Type: "naver", ClientID: "n"},                                                                                   // 2: invalid name
		{Name: "x", Type: "facebook", ClientID: "f"},                                                                                       // 3: unknown type
		{Name: "google", Type: "google", AuthURL: "ftp://example.com/auth", TokenURL: "/relative"},                                         // 4: client_id, auth_url, token_url
		{Name: "gitea", Type: "oauth2", ClientID: "g", Claims: map[string]string{"email": "email", "avatar": "x"}, PKCE: &yes},             // 5: urls, claims.subject, claims.avatar
		{Name: "acme", Type: "oidc", ClientID: "a", AdminKey: "nope", Claims: map[string]string{"subject": "sub"}},                         // 6: issuer, admin_key, claims
		{Name: "", Type: "naver", ClientID: "n", Scopes: []string{"profile"}, Success: &SuccessCheck{Path: "resultcode", Equals: "00"}},    // 7: name, success, scopes
		{Name: "kakao2", Type: "kakao", ClientID: "k", Scopes: []string{"openid,profile_nickname"}, RevokeURL: "https://user:pw@kapi.x/u"}, // 8: scopes[0], revoke_url
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
		"providers[4].client_id", "providers[4].auth_url", "providers[4].token_url",
		"providers[5].auth_url", "providers[5].token_url", "providers[5].userinfo_url", "providers[5].claims.subject", "providers[5].claims.avatar",
		"providers[6].claims", "providers[6].admin_key", "providers[6].issuer",
		"providers[7].name", "providers[7].success", "providers[7].scopes",
		"providers[8].revoke_url", "providers[8].scopes[0]",
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
	for _, frag := range []string{`duplicate name "kakao"`, `unknown type "facebook"`} {
		if !strings.Contains(msg, frag) {
			t.Errorf("error %q does not mention %q", msg, frag)
		}
	}
}

func TestNewRegistryOK(t *testing.T) {
	cfgs := []Config{
		{Name: "kakao", Type: "kakao", ClientID: "k", Scopes: []string{"openid", "profile_nickname"}},
		{Name: "naver", Type: "naver", ClientID: "n"},
		{Name: "google", Type: "google", ClientID: "g"},
		{Name: "acme", Type: "oidc", ClientID: "a", Issuer: "https://id.acme.example"},
		{Name: "gitea", Type: "oauth2", ClientID: "g", AuthURL: "https://git.example/login/oauth/authorize", TokenURL: "https://git.example/login/oauth/access_token",
			UserinfoURL: "https://git.example/api/v1/user", Claims: map[string]string{"subject": "id", "email": "email"}},
	}
	r, err := NewRegistry(cfgs, Options{RedirectBase: "https://auth.example.com/"})
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	var names []string
	for _, p := range r.All() {
		names = append(names, p.Name())
	}
	if want := []string{"kakao", "naver", "google", "acme", "gitea"}; !slices.Equal(names, want) {
		t.Errorf("All: got %v, want %v", names, want)
	}
	p, ok := r.Get("naver")
	if !ok || p.Type() != "naver" || p.DisplayName() != "Naver" {
		t.Errorf("Get(naver): got %v %v", p, ok)
	}
	if _, ok := r.Get("nope"); ok {
		t.Error("Get(nope): got ok, want not found")
	}
	// Production defaults, no network at boot.
	k, _ := r.Get("kakao")
	if got := k.AuthCodeURL("s", "n", "c"); !strings.HasPrefix(got, kakaoAuthURL+"?") ||
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
