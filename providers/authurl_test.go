package providers

import (
	"context"
	"net/url"
	"testing"
)

// Each preset spells prompt and login_hint its own way, and empty options
// add nothing to the authorize URL.
func TestAuthCodeURLPromptAndHint(t *testing.T) {
	type m = map[string]any
	r, err := NewRegistry([]Config{
		ConfigOf(m{"name": "kakao", "type": "kakao", "client_id": "k"}),
		ConfigOf(m{"name": "naver", "type": "naver", "client_id": "n", "client_secret": "ns"}),
		ConfigOf(m{"name": "google", "type": "google", "client_id": "g", "client_secret": "gs", "auth_url": "https://accounts.example/auth", "token_url": "https://accounts.example/token", "jwks_url": "https://accounts.example/jwks"}),
		ConfigOf(m{"name": "gitea", "type": "oauth2", "client_id": "g", "auth_url": "https://git.example/a", "token_url": "https://git.example/t",
			"userinfo_url": "https://git.example/u", "claims": m{"subject": "id"}}),
	}, Options{RedirectBase: "https://auth.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		provider string
		prompt   Prompt
		hint     string
		want     map[string]string // "" = absent
	}{
		{"kakao", "", "", map[string]string{"prompt": "", "login_hint": ""}},
		{"kakao", PromptLogin, "ryan", map[string]string{"prompt": "login", "login_hint": "ryan"}},
		{"kakao", PromptSelectAccount, "", map[string]string{"prompt": "select_account"}},
		{"kakao", PromptConsent, "", map[string]string{"prompt": ""}},
		{"naver", "", "x", map[string]string{"auth_type": "", "login_hint": ""}},
		{"naver", PromptLogin, "", map[string]string{"auth_type": "reauthenticate"}},
		{"naver", PromptSelectAccount, "", map[string]string{"auth_type": "reauthenticate"}},
		{"naver", PromptConsent, "", map[string]string{"auth_type": "reprompt", "prompt": ""}},
		{"google", "", "", map[string]string{"prompt": "", "login_hint": ""}},
		{"google", PromptSelectAccount, "a@example.com", map[string]string{"prompt": "select_account", "login_hint": "a@example.com"}},
		{"google", PromptConsent, "", map[string]string{"prompt": "consent"}},
		{"gitea", PromptLogin, "x", map[string]string{"prompt": "login", "login_hint": ""}},
		{"gitea", "", "", map[string]string{"prompt": ""}},
	} {
		p, _ := r.Get(tt.provider)
		raw, err := p.AuthCodeURL(context.Background(), AuthOptions{State: "s", Prompt: tt.prompt, LoginHint: tt.hint})
		if err != nil {
			t.Fatalf("%s: %v", tt.provider, err)
		}
		u, _ := url.Parse(raw)
		q := u.Query()
		for k, want := range tt.want {
			if got, ok := q[k]; (want == "") == ok || (ok && got[0] != want) {
				t.Errorf("%s prompt=%q hint=%q: %s = %q (present %v), want %q", tt.provider, tt.prompt, tt.hint, k, q.Get(k), ok, want)
			}
		}
	}
}
