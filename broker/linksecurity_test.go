package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/fakeidp"
)

// refreshOf returns the refresh token a browser's jar holds.
func refreshOf(t *testing.T, env *brokertest.Env, c *http.Client) string {
	t.Helper()
	for _, ck := range c.Jar.Cookies(mustURL(t, env.URL+"/auth/token")) {
		if ck.Name == "refresh_token" {
			return ck.Value
		}
	}
	t.Fatal("no refresh cookie in the jar")
	return ""
}

// signedInWithOldToken signs a victim in with Kakao and refreshes twice,
// each past the grace: it returns the victim's browser and their first,
// long rotated-away token.
func signedInWithOldToken(t *testing.T, env *brokertest.Env) (*http.Client, string) {
	t.Helper()
	victim := env.Client()
	loginAs(t, env, victim, "kakao", "")
	t0 := refreshOf(t, env, victim)
	for range 2 {
		env.Clock.Advance(time.Minute)
		wantStatus(t, do(t, victim, "POST", env.URL+"/auth/token", nil, nil), 200)
	}
	return victim, t0
}

// The attack of a stale refresh token: it neither starts a link nor ends
// the user's other sessions; presenting it is a reuse that revokes its
// session, as at the token endpoint. The live token still links.
func TestOldRefreshTokenStartsNoLink(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver"}, Signup: "auto"})

	victim, old := signedInWithOldToken(t, env)
	attacker := env.Client()
	r := do(t, attacker, "GET", env.URL+"/auth/link/naver", nil, withCookie(old))
	wantStatus(t, r, 401)
	if loc := r.Header.Get("Location"); loc != "" {
		t.Fatalf("stale token got a redirect to %q", loc)
	}
	// Presenting it was a reuse: the session it belonged to is revoked.
	wantStatus(t, do(t, victim, "POST", env.URL+"/auth/token", nil, nil), 401)
	if n := countRows(t, env, "identities"); n != 1 {
		t.Fatalf("identities = %d, want 1 (nothing linked)", n)
	}

	// Honest path: a live session links, and so does the parent of a
	// rotation within the grace (tabs racing).
	honest := env.Client()
	loginAs(t, env, honest, "kakao", "")
	wantStatus(t, link(t, env, honest, "naver"), 303)
	if got := identities(t, env, honest); len(got) != 2 {
		t.Fatalf("identities after honest link = %v, want kakao and naver", got)
	}
	parent := refreshOf(t, env, honest)
	wantStatus(t, do(t, honest, "POST", env.URL+"/auth/token", nil, nil), 200)
	r = do(t, env.Client(), "GET", env.URL+"/auth/link/naver", nil, withCookie(parent))
	wantStatus(t, r, 302)
}

func TestOldRefreshTokenCannotLogOutEverywhere(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	victim, old := signedInWithOldToken(t, env)
	other := env.Client() // the victim's second device
	loginAs(t, env, other, "kakao", "")

	r := do(t, env.Client(), "POST", env.URL+"/auth/logout?all=true", nil, withCookie(old))
	wantStatus(t, r, 401)
	if r.json(t).Error != "invalid_grant" {
		t.Fatalf("error = %s, want invalid_grant", r.body)
	}
	// The reuse revoked the old token's session, and only that one.
	wantStatus(t, do(t, victim, "POST", env.URL+"/auth/token", nil, nil), 401)
	wantStatus(t, do(t, other, "POST", env.URL+"/auth/token", nil, nil), 200)

	// Honest path: the live token logs out everywhere.
	third := env.Client()
	loginAs(t, env, third, "kakao", "")
	wantStatus(t, do(t, third, "POST", env.URL+"/auth/logout?all=true", nil, nil), 204)
	wantStatus(t, do(t, other, "POST", env.URL+"/auth/token", nil, nil), 401)
}

// A link started before the session ended does not complete.
func TestLinkNeedsTheSessionStillLive(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver"}, Signup: "auto"})
	c := env.Client()
	loginAs(t, env, c, "kakao", "")
	r := do(t, c, "GET", env.URL+"/auth/link/naver", nil, nil)
	wantStatus(t, r, 302)
	cb := approve(t, env, "naver", r.Header.Get("Location"))
	// Signed out everywhere from another device meanwhile: the browser still
	// sends its (now revoked) refresh cookie along with the callback.
	wantStatus(t, do(t, env.Client(), "POST", env.URL+"/auth/logout?all=true", nil, withCookie(refreshOf(t, env, c))), 204)
	r = do(t, c, "GET", cb, nil, nil)
	wantStatus(t, r, 401)
	if n := countRows(t, env, "identities"); n != 1 {
		t.Fatalf("identities = %d, want 1 (link after logout completed)", n)
	}
	// Honest path: signed in again, the same link completes.
	loginAs(t, env, c, "kakao", "")
	wantStatus(t, link(t, env, c, "naver"), 303)
	if n := countRows(t, env, "identities"); n != 2 {
		t.Fatalf("identities = %d, want 2", n)
	}
}

// A link flow cookie carried into another browser (planted, or a callback
// URL handed to a victim) completes nothing there: the link finishes only in
// the browser holding the live token of the session that started it.
func TestPlantedLinkCookieLinksNothing(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver"}, Signup: "auto"})
	attacker := env.Client()
	loginAs(t, env, attacker, "kakao", "")
	r := do(t, attacker, "GET", env.URL+"/auth/link/naver", nil, nil)
	wantStatus(t, r, 302)
	cb := approve(t, env, "naver", r.Header.Get("Location")) // the victim's Naver account
	var flow *http.Cookie
	for _, ck := range attacker.Jar.Cookies(mustURL(t, cb)) {
		if ck.Name != "refresh_token" {
			flow = ck
		}
	}
	if flow == nil {
		t.Fatal("no flow cookie after the link start")
	}

	victim := env.Client()
	env.Emulators["kakao"].SetUser(fakeidp.User{Subject: "1234567890", Nickname: "victim"})
	loginAs(t, env, victim, "kakao", "")
	victim.Jar.SetCookies(mustURL(t, cb), []*http.Cookie{flow})
	r = do(t, victim, "GET", cb, nil, nil)
	wantStatus(t, r, 401)
	if n := countRows(t, env, "identities WHERE provider = 'naver'"); n != 0 {
		t.Fatalf("naver identities = %d, want 0 (planted link completed)", n)
	}
}

// A link that another site sends the browser to is confirmed on the
// broker's own page first; the same start from the broker's origin (the
// confirmation's button) runs.
func TestCrossSiteLinkStartAsksFirst(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver"}, Signup: "auto"})
	c := env.Client()
	loginAs(t, env, c, "kakao", "")
	start := env.URL + "/auth/link/naver?return_to=" + url.QueryEscape("https://app.example.com/after")
	r := do(t, c, "GET", start, nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
	wantStatus(t, r, 200)
	if r.Header.Get("Location") != "" || len(r.Cookies()) != 0 {
		t.Fatalf("cross-site start redirected or set cookies: %v", r.Header)
	}
	body := string(r.body)
	if !strings.Contains(body, `id="link-continue" class="btn btn-primary" href="/auth/link/naver?return_to=https%3A%2F%2Fapp.example.com%2Fafter"`) {
		t.Fatalf("confirmation page lacks the continue link: %s", body)
	}
	for _, site := range []string{"same-origin", "same-site", "none", ""} {
		r = do(t, c, "GET", start, nil, map[string]string{"Sec-Fetch-Site": site})
		wantStatus(t, r, 302)
	}
	// A return_to the broker refuses is refused on the confirmation too.
	r = do(t, c, "GET", env.URL+"/auth/link/naver?return_to=https://evil.example/", nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
	wantStatus(t, r, 400)
}
