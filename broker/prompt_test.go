package broker_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/socialbroker/broker/broker/brokertest"
)

// prompt and login_hint reach each provider in its own spelling; anything
// else is refused before the provider is asked.
func TestPromptAndLoginHint(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver", "google"}, Signup: "auto"})
	for _, tc := range []struct {
		provider, query string
		want            map[string]string
	}{
		{"google", "prompt=select_account&login_hint=dev%40gmail.example", map[string]string{"prompt": "select_account", "login_hint": "dev@gmail.example"}},
		{"google", "prompt=consent", map[string]string{"prompt": "consent"}},
		{"kakao", "prompt=login", map[string]string{"prompt": "login"}},
		{"naver", "prompt=login", map[string]string{"auth_type": "reauthenticate"}},
		{"naver", "prompt=consent", map[string]string{"auth_type": "reprompt"}},
		{"google", "", map[string]string{"prompt": "", "login_hint": ""}},
	} {
		r := do(t, env.Client(), "GET", env.URL+"/auth/login/"+tc.provider+"?"+tc.query, nil, nil)
		wantStatus(t, r, 302)
		q := mustURL(t, r.Header.Get("Location")).Query()
		for k, v := range tc.want {
			if q.Get(k) != v {
				t.Errorf("%s?%s: %s = %q, want %q", tc.provider, tc.query, k, q.Get(k), v)
			}
		}
	}
	for _, bad := range []string{"prompt=none", "prompt=LOGIN", "prompt=login&prompt=consent", "login_hint=" + strings.Repeat("a", 257)} {
		r := do(t, env.Client(), "GET", env.URL+"/auth/login/google?"+bad, nil, nil)
		wantStatus(t, r, 400)
		if r.Header.Get("Location") != "" {
			t.Fatalf("%s: redirected", bad)
		}
	}
	// A link asks for the account chooser unless told otherwise.
	c := env.Client()
	loginAs(t, env, c, "kakao", "")
	r := do(t, c, "GET", env.URL+"/auth/link/google", nil, nil)
	wantStatus(t, r, 302)
	if q := mustURL(t, r.Header.Get("Location")).Query(); q.Get("prompt") != "select_account" {
		t.Fatalf("link prompt = %q, want select_account", q.Get("prompt"))
	}
	r = do(t, c, "GET", env.URL+"/auth/link/google?prompt="+url.QueryEscape("consent"), nil, nil)
	if q := mustURL(t, r.Header.Get("Location")).Query(); q.Get("prompt") != "consent" {
		t.Fatalf("link prompt = %q, want consent", q.Get("prompt"))
	}
}
