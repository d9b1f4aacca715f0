package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/providers/providertest"
)

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// startLogin follows /auth/login/{provider} to the provider and returns the
// authorize URL.
func startLogin(t *testing.T, env *brokertest.Env, c *http.Client, provider, returnTo string) string {
	t.Helper()
	u := env.URL + "/auth/login/" + provider
	if returnTo != "" {
		u += "?return_to=" + url.QueryEscape(returnTo)
	}
	r := do(t, c, "GET", u, nil, nil)
	wantStatus(t, r, 302)
	return r.Header.Get("Location")
}

// approve plays the user at the provider and returns the callback URL.
func approve(t *testing.T, env *brokertest.Env, provider, authURL string) string {
	t.Helper()
	cb, err := env.Emulators[provider].Approve(context.Background(), authURL)
	if err != nil {
		t.Fatalf("%s consent: %v", provider, err)
	}
	return cb.String()
}

// loginAs runs a whole login; a new identity completes the signup form with
// nickname. It returns the final redirect.
func loginAs(t *testing.T, env *brokertest.Env, c *http.Client, provider, nickname string) response {
	t.Helper()
	r := do(t, c, "GET", approve(t, env, provider, startLogin(t, env, c, provider, "")), nil, nil)
	if r.StatusCode == 200 { // the signup form
		m := csrfRE.FindSubmatch(r.body)
		if m == nil {
			t.Fatalf("signup form without csrf_token: %s", r.body)
		}
		r = do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {string(m[1])}, "nickname": {nickname}}, nil)
	}
	wantStatus(t, r, 303)
	return r
}

func me(t *testing.T, env *brokertest.Env, c *http.Client) map[string]any {
	t.Helper()
	r := do(t, c, "POST", env.URL+"/auth/token", nil, nil)
	wantStatus(t, r, 200)
	m := do(t, c, "GET", env.URL+"/auth/me", nil, map[string]string{"Authorization": "Bearer " + r.json(t).AccessToken})
	wantStatus(t, m, 200)
	var out map[string]any
	if err := json.Unmarshal(m.body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func countRows(t *testing.T, env *brokertest.Env, table string) int {
	t.Helper()
	var n int
	if err := env.Store.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Every provider kind: signup on first login, the same sub on the next.
func TestLoginEveryProvider(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	for _, p := range []string{"kakao", "naver", "google", "oidc", "oauth2"} {
		t.Run(p, func(t *testing.T) {
			c := env.Client()
			r := loginAs(t, env, c, p, "nick-"+p)
			if loc := r.Header.Get("Location"); loc != "https://app.example.com/" {
				t.Fatalf("final redirect = %q, want the default return_to", loc)
			}
			ck := r.cookie("refresh_token")
			if ck == nil || !ck.HttpOnly || ck.Path != "/auth" {
				t.Fatalf("refresh cookie = %+v", ck)
			}
			first := me(t, env, c)
			if prof, _ := first["profile"].(map[string]any); prof["nickname"] != "nick-"+p {
				t.Fatalf("profile = %v, want nickname nick-%s", first["profile"], p)
			}
			// A second login (another browser) is the same user, without the form.
			c2 := env.Client()
			loginAs(t, env, c2, p, "ignored")
			if second := me(t, env, c2); second["sub"] != first["sub"] {
				t.Fatalf("second login sub = %v, want %v", second["sub"], first["sub"])
			}
			if sub, _ := first["sub"].(string); sub == brokertest.Users[p].Subject || strings.Contains(sub, "@") {
				t.Fatalf("sub %q leaks the provider's id", sub)
			}
		})
	}
	if n := countRows(t, env, "users"); n != 5 {
		t.Fatalf("users = %d, want 5", n)
	}
}

func TestLoginRequestCarriesStateNoncePKCE(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver"}})
	c := env.Client()
	u, _ := url.Parse(startLogin(t, env, c, "kakao", ""))
	q := u.Query()
	if q.Get("redirect_uri") != env.URL+"/auth/callback/kakao" || len(q.Get("state")) < 22 || len(q.Get("nonce")) < 22 ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("scope") != "openid,profile_nickname,profile_image,account_email" {
		t.Fatalf("kakao authorize query = %v", q)
	}
	var state *http.Cookie
	for _, ck := range c.Jar.Cookies(mustURL(t, env.URL+"/auth/callback/kakao")) {
		if ck.Name == "broker_login" {
			state = ck
		}
	}
	if state == nil || strings.Contains(state.Value, q.Get("state")) {
		t.Fatalf("state cookie = %+v, want a sealed value not containing the state", state)
	}
	// Naver's token request carries the state.
	loginAs(t, env, env.Client(), "naver", "n")
	found := false
	for _, call := range env.Emulators["naver"].Calls() {
		if call.Path == "/oauth2.0/token" && call.Form.Get("state") != "" {
			found = true
		}
	}
	if !found {
		t.Fatal("Naver token request without state")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Every failure ends on an error page with no user and no session, and
// the honest login still works afterwards.
func TestLoginFailuresLeaveNothing(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Extra: "limits:\n  per_minute: { login: 0, callback: 0 }\n"})
	type tc struct {
		name     string
		provider string
		faults   fakeidp.Faults
		mangle   func(t *testing.T, c *http.Client, cb string) string // returns the callback URL to call
		status   int
		code     string
	}
	cases := []tc{
		{name: "tampered state", provider: "kakao", status: 400, code: "invalid_state",
			mangle: func(t *testing.T, c *http.Client, cb string) string { return setQuery(cb, "state", "forged") }},
		{name: "no state cookie", provider: "kakao", status: 400, code: "invalid_state",
			mangle: func(t *testing.T, c *http.Client, cb string) string { c.Jar = nil; return cb }},
		{name: "state from another login", provider: "google", status: 400, code: "invalid_state"},
		{name: "state bound to provider", provider: "kakao", status: 400, code: "invalid_state",
			mangle: func(t *testing.T, c *http.Client, cb string) string {
				return strings.Replace(cb, "/auth/callback/kakao", "/auth/callback/naver", 1)
			}},
		{name: "user cancelled", provider: "naver", status: 403, code: "access_denied"},
		{name: "bad id_token signature", provider: "kakao", faults: fakeidp.Faults{IDToken: fakeidp.BadSignature}, status: 400, code: "invalid_id_token"},
		{name: "wrong audience", provider: "google", faults: fakeidp.Faults{IDToken: fakeidp.WrongAudience}, status: 400, code: "invalid_id_token"},
		{name: "wrong issuer", provider: "oidc", faults: fakeidp.Faults{IDToken: fakeidp.WrongIssuer}, status: 400, code: "invalid_id_token"},
		{name: "wrong nonce", provider: "kakao", faults: fakeidp.Faults{IDToken: fakeidp.WrongNonce}, status: 400, code: "invalid_id_token"},
		{name: "alg none", provider: "google", faults: fakeidp.Faults{IDToken: fakeidp.AlgNone}, status: 400, code: "invalid_id_token"},
		{name: "naver envelope failure", provider: "naver", faults: fakeidp.Faults{UserinfoStatus: 200, UserinfoBody: `{"resultcode":"024","message":"Authentication failed"}`}, status: 502, code: "invalid_response"},
		{name: "token endpoint 500", provider: "oauth2", faults: fakeidp.Faults{TokenStatus: 500}, status: 502, code: "provider_error"},
		{name: "huge body", provider: "kakao", faults: fakeidp.Faults{HugeBody: true}, status: 502, code: "provider_error"},
		{name: "gzip bomb token", provider: "naver", faults: fakeidp.Faults{GzipBomb: true, BodyFaultsOnly: "token"}, status: 502, code: "provider_error"},
		{name: "gzip bomb userinfo", provider: "kakao", faults: fakeidp.Faults{GzipBomb: true, BodyFaultsOnly: "userinfo"}, status: 502, code: "provider_error"},
		{name: "reset token", provider: "google", faults: fakeidp.Faults{Reset: true, BodyFaultsOnly: "token"}, status: 502, code: "provider_error"},
		{name: "reset userinfo", provider: "oauth2", faults: fakeidp.Faults{Reset: true, BodyFaultsOnly: "userinfo"}, status: 502, code: "provider_error"},
		{name: "trickled token body", provider: "oidc", faults: fakeidp.Faults{Trickle: 200 * time.Millisecond, BodyFaultsOnly: "token"}, status: 504, code: "provider_timeout"},
		{name: "trickled userinfo body", provider: "naver", faults: fakeidp.Faults{Trickle: 200 * time.Millisecond, BodyFaultsOnly: "userinfo"}, status: 504, code: "provider_timeout"},
	}
	// Every id_token defect the emulator can forge, spread over the
	// providers that issue id_tokens.
	for i, fault := range providertest.IDTokenFaults {
		p := []string{"kakao", "google", "oidc"}[i%3]
		cases = append(cases, tc{name: "id_token " + string(fault) + " via " + p, provider: p,
			faults: fakeidp.Faults{IDToken: fault}, status: 400, code: "invalid_id_token"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			em := env.Emulators[c.provider]
			cl := env.Client()
			auth := startLogin(t, env, cl, c.provider, "")
			var cb *url.URL
			var err error
			if c.code == "access_denied" {
				cb, err = em.Deny(context.Background(), auth)
			} else {
				cb, err = em.Approve(context.Background(), auth)
			}
			if err != nil {
				t.Fatal(err)
			}
			target := cb.String()
			if c.name == "state from another login" {
				// The callback arrives in a browser whose cookie is another login's.
				other := env.Client()
				startLogin(t, env, other, c.provider, "")
				cl = other
			} else if c.mangle != nil {
				target = c.mangle(t, cl, target)
			}
			em.SetFaults(c.faults)
			defer em.SetFaults(fakeidp.Faults{})
			if cl.Jar == nil {
				cl = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			}
			r := do(t, cl, "GET", target, nil, nil)
			wantStatus(t, r, c.status)
			if !strings.Contains(string(r.body), `id="error-code">`+c.code+`<`) {
				t.Fatalf("error page lacks code %s: %s", c.code, r.body)
			}
			if r.cookie("refresh_token") != nil {
				t.Fatal("a failed login set a refresh cookie")
			}
		})
	}
	if u, s := countRows(t, env, "users"), countRows(t, env, "sessions"); u != 0 || s != 0 {
		t.Fatalf("after failures: %d users, %d sessions; want none", u, s)
	}
	for name, em := range env.Emulators {
		if n := em.AttackerJWKSFetches(); n != 0 {
			t.Fatalf("%s: the broker fetched an attacker's key URL (jku/x5u) %d times", name, n)
		}
	}
	// The honest path works.
	loginAs(t, env, env.Client(), "kakao", "ok")
	if u := countRows(t, env, "users"); u != 1 {
		t.Fatalf("users after honest login = %d, want 1", u)
	}
}

func setQuery(raw, k, v string) string {
	u, _ := url.Parse(raw)
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestCallbackReplayAndReusedCode(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	c := env.Client()
	auth := startLogin(t, env, c, "kakao", "")
	cb := approve(t, env, "kakao", auth)
	// Capture the state cookie to replay it later.
	cookies := c.Jar.Cookies(mustURL(t, cb))
	r := do(t, c, "GET", cb, nil, nil)
	wantStatus(t, r, 303)
	// Same callback again with the same (replayed) state cookie: refused before the provider is called.
	tokenCalls := env.Emulators["kakao"].CallCount("/oauth/token")
	hdr := map[string]string{}
	for _, ck := range cookies {
		hdr["Cookie"] = ck.Name + "=" + ck.Value
	}
	r = do(t, &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, "GET", cb, nil, hdr)
	wantStatus(t, r, 400)
	if got := env.Emulators["kakao"].CallCount("/oauth/token"); got != tokenCalls {
		t.Fatalf("replayed state reached the provider (%d token calls, want %d)", got, tokenCalls)
	}
	if n := countRows(t, env, "sessions"); n != 1 {
		t.Fatalf("sessions = %d, want 1", n)
	}
}

func TestSignupForm(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"google"}})
	c := env.Client()
	r := do(t, c, "GET", approve(t, env, "google", startLogin(t, env, c, "google", "")), nil, nil)
	wantStatus(t, r, 200)
	csrf := string(csrfRE.FindSubmatch(r.body)[1])
	if !strings.Contains(string(r.body), `name="nickname"`) {
		t.Fatal("signup form lacks the nickname input")
	}
	for name, form := range map[string]url.Values{
		"blank":      {"csrf_token": {csrf}, "nickname": {"   "}},
		"missing":    {"csrf_token": {csrf}},
		"too long":   {"csrf_token": {csrf}, "nickname": {strings.Repeat("가", 65)}},
		"control":    {"csrf_token": {csrf}, "nickname": {"a\x00b"}},
		"bidi":       {"csrf_token": {csrf}, "nickname": {"abc\u202edef"}},
		"wrong csrf": {"csrf_token": {"nope"}, "nickname": {"ok"}},
	} {
		r := do(t, c, "POST", env.URL+"/auth/signup", form, nil)
		if r.StatusCode != 400 || !strings.Contains(string(r.body), `id="message"`) || !strings.Contains(string(r.body), `name="nickname"`) {
			t.Fatalf("%s: status %d, want 400 with the form and a message; body %s", name, r.StatusCode, r.body)
		}
	}
	if n := countRows(t, env, "users"); n != 0 {
		t.Fatalf("users after refused signups = %d, want 0", n)
	}
	// A foreign Origin is refused.
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {csrf}, "nickname": {"x"}}, map[string]string{"Origin": "https://evil.example"}), 403)
	// Double submit at once: one user. The nickname's emoji is a ZWJ
	// sequence: joiners are part of real names.
	const nick = "\u2764\ufe0f\u200d\U0001f525민지"
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {csrf}, "nickname": {nick}}, nil).StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		if s == 303 {
			ok++
		}
	}
	if ok != 1 || countRows(t, env, "users") != 1 {
		t.Fatalf("double submit: %d successes, %d users; want 1 and 1", ok, countRows(t, env, "users"))
	}
	if prof, _ := me(t, env, c)["profile"].(map[string]any); prof["nickname"] != nick {
		t.Fatalf("profile = %v", prof)
	}
}

func TestReturnTo(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	c := env.Client()
	for _, bad := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "https://app.example.com@evil.example/", "javascript:alert(1)"} {
		r := do(t, c, "GET", env.URL+"/auth/login/kakao?return_to="+url.QueryEscape(bad), nil, nil)
		if r.StatusCode != 400 || r.Header.Get("Location") != "" {
			t.Fatalf("return_to %q: status %d Location %q, want 400 and no redirect", bad, r.StatusCode, r.Header.Get("Location"))
		}
	}
	// A repeated return_to is refused: parsers disagree on which copy counts.
	for _, path := range []string{"/auth/login/kakao", "/auth/login", "/"} {
		r := do(t, c, "GET", env.URL+path+"?return_to=https://app.example.com/a&return_to=https://evil.example/", nil, nil)
		if r.StatusCode != 400 || r.Header.Get("Location") != "" || strings.Contains(string(r.body), "evil.example") {
			t.Fatalf("%s with two return_to: status %d Location %q", path, r.StatusCode, r.Header.Get("Location"))
		}
	}
	wantStatus(t, do(t, c, "GET", env.URL+"/auth/login/nope", nil, nil), 404)
	r := do(t, c, "GET", approve(t, env, "kakao", startLogin(t, env, c, "kakao", "/inbox?tab=1")), nil, nil)
	wantStatus(t, r, 303)
	if loc := r.Header.Get("Location"); loc != "https://app.example.com/inbox?tab=1" {
		t.Fatalf("relative return_to resolved to %q", loc)
	}
}

// A callback repeating state, code or error is refused before the provider
// is called, and the login can still be finished with the honest callback.
func TestCallbackRepeatedParameters(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	em := env.Emulators["kakao"]
	c := env.Client()
	cb := approve(t, env, "kakao", startLogin(t, env, c, "kakao", ""))
	u := mustURL(t, cb)
	q := u.Query()
	tokenCalls := em.CallCount("/oauth/token")
	for name, extra := range map[string]string{
		"state twice": "&state=" + url.QueryEscape(q.Get("state")),
		"code twice":  "&code=forged",
		"error too":   "&error=access_denied&error=server_error",
	} {
		jar := c.Jar.Cookies(u) // each attempt from a browser holding the state cookie
		c2 := env.Client()
		c2.Jar.SetCookies(u, jar)
		r := do(t, c2, "GET", cb+extra, nil, nil)
		if r.StatusCode != 400 || r.cookie("refresh_token") != nil {
			t.Fatalf("%s: status %d, want 400 and no session", name, r.StatusCode)
		}
	}
	if n := em.CallCount("/oauth/token"); n != tokenCalls {
		t.Fatalf("token requests: %d, want none for refused callbacks", n-tokenCalls)
	}
	wantStatus(t, do(t, c, "GET", cb, nil, nil), 303)
}

// Two first-time callbacks for one new identity at the same instant: one user.
func TestConcurrentFirstLogins(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"naver"}, Signup: "auto"})
	const n = 4
	type flow struct {
		c  *http.Client
		cb string
	}
	flows := make([]flow, n)
	for i := range flows {
		c := env.Client()
		flows[i] = flow{c, approve(t, env, "naver", startLogin(t, env, c, "naver", ""))}
	}
	var wg sync.WaitGroup
	for _, f := range flows {
		wg.Add(1)
		go func(f flow) {
			defer wg.Done()
			r := do(t, f.c, "GET", f.cb, nil, nil)
			if r.StatusCode != 303 {
				t.Errorf("status %d: %s", r.StatusCode, r.body)
			}
		}(f)
	}
	wg.Wait()
	if u := countRows(t, env, "users"); u != 1 {
		t.Fatalf("users = %d, want 1", u)
	}
}
