package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
)

// No token, code, state, nonce, verifier, cookie or secret appears in any
// log line after full flows (logs are captured at debug level).
func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	var secrets []string
	for _, p := range []string{"kakao", "naver", "google", "oidc", "oauth2"} {
		c := env.Client()
		auth := startLogin(t, env, c, p, "")
		au, _ := url.Parse(auth)
		secrets = append(secrets, au.Query().Get("state"), au.Query().Get("nonce"), au.Query().Get("code_challenge"), p+"-secret")
		cb := approve(t, env, p, auth)
		cu, _ := url.Parse(cb)
		secrets = append(secrets, cu.Query().Get("code"))
		for _, ck := range c.Jar.Cookies(cu) {
			secrets = append(secrets, ck.Value)
		}
		r := do(t, c, "GET", cb, nil, nil)
		if m := csrfRE.FindSubmatch(r.body); m != nil {
			secrets = append(secrets, string(m[1]))
			r = do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {string(m[1])}, "nickname": {"secret-nick-" + p}}, nil)
		}
		wantStatus(t, r, 303)
		secrets = append(secrets, r.cookie("refresh_token").Value, "secret-nick-"+p)
		tr := do(t, c, "POST", env.URL+"/auth/token", nil, nil)
		wantStatus(t, tr, 200)
		secrets = append(secrets, tr.json(t).AccessToken, tr.cookie("refresh_token").Value)
		// A replayed code: the provider's error echoes the code (Kakao does).
		r = do(t, env.Client(), "GET", cb, nil, nil)
		if r.StatusCode < 400 {
			t.Fatalf("%s: replayed callback status %d", p, r.StatusCode)
		}
		wantStatus(t, do(t, c, "POST", env.URL+"/auth/logout", nil, nil), 204)
	}
	// Provider-side personal data.
	for _, u := range brokertest.Users {
		secrets = append(secrets, u.Email, u.Subject)
	}
	logs := env.Logs.String()
	if len(logs) < 200 {
		t.Fatalf("suspiciously few logs captured (%d bytes)", len(logs))
	}
	for _, s := range secrets {
		if len(s) >= 6 && strings.Contains(logs, s) {
			t.Errorf("a secret or personal value (%.8s…) appears in the logs", s)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}})
	c := env.Client()
	for _, path := range []string{"/", "/auth/login", "/auth/login/kakao?return_to=https://evil.example/", "/auth/signup", "/demo/"} {
		r := do(t, c, "GET", env.URL+path, nil, nil)
		h := r.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, h)
		}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") && !strings.Contains(strings.ToLower(string(r.body)), "<html") {
			t.Errorf("%s: html content type without a page", path)
		}
	}
	r := do(t, c, "GET", approve(t, env, "kakao", startLogin(t, env, c, "kakao", "")), nil, nil)
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("callback/signup page headers: %v", r.Header)
	}
	if r.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS on a plain-http issuer")
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Extra: "limits:\n  per_minute: { login: 3, token: 2 }\n"})
	c := env.Client()
	for i := 0; i < 3; i++ {
		wantStatus(t, do(t, c, "GET", env.URL+"/auth/login/kakao", nil, nil), 302)
	}
	r := do(t, c, "GET", env.URL+"/auth/login/kakao", nil, nil)
	wantStatus(t, r, 429)
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	tok, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	c = &http.Client{} // explicit cookies from here on
	r = do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
	wantStatus(t, r, 200)
	tok = r.cookie("refresh_token").Value
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie("x")), 401)
	r = do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
	wantStatus(t, r, 429)
	if r.json(t).Error != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("429 body %s", r.body)
	}
	// X-Forwarded-For from an untrusted peer does not buy a new bucket.
	r = do(t, c, "POST", env.URL+"/auth/token", nil, map[string]string{"Cookie": "refresh_token=" + tok, "X-Forwarded-For": "198.51.100.9"})
	wantStatus(t, r, 429)
	// The limited token was not consumed: after the window it still works.
	env.Clock.Advance(60e9)
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok)), 200)
}

// Under Referrer-Policy: no-referrer a browser posts the signup form with
// Origin: null and Sec-Fetch-Site: same-origin; that is our own page. A
// bare null or a cross-site null is refused.
func TestNullOriginFromOwnPage(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}})
	c := env.Client()
	r := do(t, c, "GET", approve(t, env, "kakao", startLogin(t, env, c, "kakao", "")), nil, nil)
	wantStatus(t, r, 200)
	csrf := string(csrfRE.FindSubmatch(r.body)[1])
	form := url.Values{"csrf_token": {csrf}, "nickname": {"ok"}}
	for name, hdr := range map[string]map[string]string{
		"bare null":       {"Origin": "null"},
		"cross-site null": {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
		"same-site null":  {"Origin": "null", "Sec-Fetch-Site": "same-site"},
	} {
		if r := do(t, c, "POST", env.URL+"/auth/signup", form, hdr); r.StatusCode != 403 {
			t.Fatalf("%s: status %d, want 403", name, r.StatusCode)
		}
	}
	if n := countRows(t, env, "users"); n != 0 {
		t.Fatalf("users = %d, want 0", n)
	}
	r = do(t, c, "POST", env.URL+"/auth/signup", form, map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"})
	wantStatus(t, r, 303)
}

// A state cookie past its sealed expiry, or sent twice, is refused before
// the provider is called; the honest callback still works.
func TestStateCookieExpiryAndDuplicates(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	em := env.Emulators["kakao"]
	noJar := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	c := env.Client()
	cb := approve(t, env, "kakao", startLogin(t, env, c, "kakao", ""))
	var state string
	for _, ck := range c.Jar.Cookies(mustURL(t, cb)) {
		if ck.Name == "broker_login" {
			state = ck.Value
		}
	}
	calls := em.CallCount("/oauth/token")
	r := do(t, noJar, "GET", cb, nil, map[string]string{"Cookie": "broker_login=" + state + "; broker_login=" + state})
	wantStatus(t, r, 400)
	env.Clock.Advance(11 * time.Minute)
	r = do(t, noJar, "GET", cb, nil, map[string]string{"Cookie": "broker_login=" + state})
	wantStatus(t, r, 400)
	if !strings.Contains(string(r.body), "invalid_state") {
		t.Fatalf("expired state: %s", r.body)
	}
	if got := em.CallCount("/oauth/token"); got != calls {
		t.Fatalf("refused callbacks reached the provider (%d token calls, want %d)", got, calls)
	}
	// A fresh login at the new time works.
	loginAs(t, env, env.Client(), "kakao", "")
}

// Bodies over the limit are refused without being read whole.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}})
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {strings.Repeat("a", 100<<10)}}
	r := do(t, &http.Client{}, "POST", env.URL+"/auth/token", form, nil)
	wantStatus(t, r, 413)
	tok, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	wantStatus(t, do(t, &http.Client{}, "POST", env.URL+"/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}, nil), 200)
}

// Served over HTTPS (an https issuer): every response carries HSTS, and
// every cookie of a whole login is Secure. The honest path works end to end.
func TestHTTPSIssuer(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto", TLS: true})
	if !strings.HasPrefix(env.URL, "https://") {
		t.Fatalf("issuer %s is not https", env.URL)
	}
	c := env.Client()
	hsts := func(r response) {
		t.Helper()
		if h := r.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") || strings.HasPrefix(h, "max-age=0") {
			t.Errorf("%s %s: Strict-Transport-Security %q", r.Request.Method, r.Request.URL.Path, h)
		}
		for _, ck := range r.Cookies() {
			if !ck.Secure || !ck.HttpOnly {
				t.Errorf("%s %s: cookie %s Secure=%v HttpOnly=%v", r.Request.Method, r.Request.URL.Path, ck.Name, ck.Secure, ck.HttpOnly)
			}
		}
	}
	for _, path := range []string{"/", "/.well-known/jwks.json", "/.well-known/openid-configuration", "/healthz", "/auth/login/nope"} {
		hsts(do(t, c, "GET", env.URL+path, nil, nil))
	}
	r := do(t, c, "GET", env.URL+"/auth/login/kakao", nil, nil)
	wantStatus(t, r, 302)
	hsts(r)
	// The state cookie is a __Host- cookie: browsers refuse one planted by a
	// sibling subdomain or over plain http.
	if ck := r.cookie("__Host-broker_login"); ck == nil || ck.Path != "/" || ck.Domain != "" || !ck.Secure {
		t.Fatalf("state cookie = %+v, want __Host-broker_login, Path=/, no Domain, Secure", r.Cookies())
	}
	if q := mustURL(t, r.Header.Get("Location")).Query(); q.Get("redirect_uri") != env.URL+"/auth/callback/kakao" {
		t.Fatalf("redirect_uri %q, want the https callback", q.Get("redirect_uri"))
	}
	r = do(t, c, "GET", approve(t, env, "kakao", r.Header.Get("Location")), nil, nil)
	wantStatus(t, r, 303)
	hsts(r)
	if r.cookie("refresh_token") == nil {
		t.Fatal("no refresh cookie after the login")
	}
	r = do(t, c, "POST", env.URL+"/auth/token", nil, nil)
	wantStatus(t, r, 200)
	hsts(r)
	r = do(t, c, "POST", env.URL+"/auth/token", nil, map[string]string{"Origin": "https://evil.example"})
	wantStatus(t, r, 403)
	hsts(r)
}

// Behind a configured proxy, each client named by X-Forwarded-For has its
// own budget; a forged left-most entry buys nothing, because only the
// right-most address the proxy itself appended counts.
func TestRateLimitBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"},
		Extra: "limits:\n  per_minute: { login: 2 }\n  trusted_proxies: [127.0.0.1/32]\n"})
	c := env.Client()
	login := func(xff string) int {
		t.Helper()
		var hdr map[string]string
		if xff != "" {
			hdr = map[string]string{"X-Forwarded-For": xff}
		}
		return do(t, c, "GET", env.URL+"/auth/login/kakao", nil, hdr).StatusCode
	}
	for i := 0; i < 2; i++ {
		if s := login("198.51.100.1"); s != 302 {
			t.Fatalf("client A login %d: status %d", i, s)
		}
	}
	for name, xff := range map[string]string{
		"client A again":             "198.51.100.1",
		"client A with a forged hop": "203.0.113.7, 198.51.100.1",
		"client A through 2 proxies": "198.51.100.1, 127.0.0.1",
	} {
		if s := login(xff); s != 429 {
			t.Errorf("%s: status %d, want 429", name, s)
		}
	}
	if s := login("198.51.100.2"); s != 302 {
		t.Fatalf("client B: status %d, want its own budget", s)
	}
	if s := login(""); s != 302 {
		t.Fatalf("the proxy's own requests: status %d, want their own budget", s)
	}
}

// Paths and methods no route serves answer in their surface's format: JSON
// under the API paths, the error page elsewhere; 405s name what works.
func TestUnroutedRequests(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}})
	c := env.Client()
	for _, tc := range []struct {
		method, path string
		status       int
		api          bool
		allow        string
	}{
		{"GET", "/auth/token", 405, true, "POST"},
		{"PUT", "/auth/logout", 405, true, "POST"},
		{"POST", "/auth/me", 405, true, "DELETE, GET, HEAD"},
		{"GET", "/auth/identities/kakao", 405, true, "DELETE"},
		{"DELETE", "/auth/webhooks/kakao/unlink", 405, true, "GET, HEAD, POST"},
		{"GET", "/auth/token/extra", 404, true, ""},
		{"GET", "/auth/identities", 404, true, ""},
		{"POST", "/auth/login/kakao", 405, false, "GET, HEAD"},
		{"DELETE", "/", 405, false, "GET, HEAD"},
		{"GET", "/nope", 404, false, ""},
		{"GET", "/auth/tokens", 404, false, ""},
		{"GET", "/auth/callback", 404, false, ""},
	} {
		r := do(t, c, tc.method, env.URL+tc.path, nil, nil)
		ct := r.Header.Get("Content-Type")
		if r.StatusCode != tc.status || r.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: status %d Allow %q, want %d %q", tc.method, tc.path, r.StatusCode, r.Header.Get("Allow"), tc.status, tc.allow)
		}
		want := map[int]string{404: "not_found", 405: "method_not_allowed"}[tc.status]
		if tc.api {
			if ct != "application/json" || r.json(t).Error != want {
				t.Errorf("%s %s: %s %s, want JSON error %s", tc.method, tc.path, ct, r.body, want)
			}
		} else if !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(r.body), want) ||
			!strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s %s: %s, want the error page showing %s", tc.method, tc.path, ct, want)
		}
	}
	// Not logged as failures: scanners ask for anything.
	if logs := env.Logs.String(); strings.Contains(logs, `"code":"not_found"`) || strings.Contains(logs, `"code":"method_not_allowed"`) {
		t.Error("unrouted requests were logged as failures")
	}
	// The routes themselves are unaffected.
	wantStatus(t, do(t, c, "GET", env.URL+"/auth/login/kakao", nil, nil), 302)
	wantStatus(t, do(t, c, "GET", env.URL+"/.well-known/jwks.json", nil, nil), 200)
	if r := do(t, c, "GET", env.URL+"/auth/me", nil, nil); r.StatusCode != 401 || r.json(t).Error != "invalid_token" {
		t.Fatalf("GET /auth/me without a token: %d %s", r.StatusCode, r.body)
	}
}
