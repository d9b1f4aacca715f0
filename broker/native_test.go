package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/internal/nativeapp"
)

const nativeApps = `native_apps:
  - client_id: com.example.app
    redirect_uris: [com.example.app:/oauth2redirect, "http://127.0.0.1/callback", "https://app.example.com/native/cb"]
  - client_id: com.example.other
    redirect_uris: [com.example.other:/cb]
`

const privateRedirect = "com.example.app:/oauth2redirect"

func nativeEnv(t *testing.T, o brokertest.Options) (*brokertest.Env, *nativeapp.App) {
	t.Helper()
	o.Extra += nativeApps
	env := brokertest.New(t, o)
	return env, &nativeapp.App{Issuer: env.URL, ClientID: "com.example.app"}
}

// browse plays the system browser from an app's login URL to the redirect
// that leaves the broker for the app: the provider's consent, and the
// signup form (with nickname) when one is shown. The browser never gets a
// refresh cookie. It returns that redirect's Location.
func browse(t *testing.T, env *brokertest.Env, c *http.Client, provider, loginURL, nickname string) string {
	t.Helper()
	r := do(t, c, "GET", loginURL, nil, nil)
	wantStatus(t, r, 302)
	r = do(t, c, "GET", approve(t, env, provider, r.Header.Get("Location")), nil, nil)
	if r.StatusCode == 200 {
		m := csrfRE.FindSubmatch(r.body)
		if m == nil {
			t.Fatalf("signup form without csrf_token: %s", r.body)
		}
		r = do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {string(m[1])}, "nickname": {nickname}}, nil)
	}
	if r.StatusCode != 302 && r.StatusCode != 303 {
		t.Fatalf("end of the browser part: %d %s", r.StatusCode, r.body)
	}
	noRefreshCookie(t, env, c, r)
	return r.Header.Get("Location")
}

func noRefreshCookie(t *testing.T, env *brokertest.Env, c *http.Client, r response) {
	t.Helper()
	if ck := r.cookie("refresh_token"); ck != nil {
		t.Fatalf("a native login set a refresh cookie for the browser: %+v", ck)
	}
	u, _ := url.Parse(env.URL + "/auth/token")
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "refresh_token" {
			t.Fatal("the browser holds a refresh cookie after a native login")
		}
	}
}

func meWith(t *testing.T, env *brokertest.Env, access string) map[string]any {
	t.Helper()
	r := do(t, env.Client(), "GET", env.URL+"/auth/me", nil, map[string]string{"Authorization": "Bearer " + access})
	wantStatus(t, r, 200)
	var out map[string]any
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sessionsOf(t *testing.T, env *brokertest.Env, access string) []map[string]any {
	t.Helper()
	r := do(t, env.Client(), "GET", env.URL+"/auth/sessions", nil, map[string]string{"Authorization": "Bearer " + access})
	wantStatus(t, r, 200)
	var out struct {
		Sessions []map[string]any `json:"sessions"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Sessions
}

// The happy path for Naver, Kakao and a config-added oauth2 provider, on a
// loopback redirect (the app's own listener, a port the system picked): a
// new user through the signup form, then a returning one; the code is
// redeemed once, the session is kind native and refreshes in the form
// variant.
func TestNativeLoopbackEveryProvider(t *testing.T) {
	t.Parallel()
	env, app := nativeEnv(t, brokertest.Options{Providers: []string{"naver", "kakao", "oauth2"}})
	ctx := context.Background()
	for _, p := range []string{"naver", "kakao", "oauth2"} {
		t.Run(p, func(t *testing.T) {
			var sub string
			for i, nick := range []string{"app-" + p, ""} {
				login, err := app.StartLoopback(p, "/callback", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer login.Close()
				c := env.Client()
				loc := browse(t, env, c, p, login.URL, nick)
				if !strings.HasPrefix(loc, login.RedirectURI+"?") {
					t.Fatalf("login %d ended at %q, want the app's %s", i, loc, login.RedirectURI)
				}
				// The browser follows the redirect to the app's listener.
				do(t, c, "GET", loc, nil, nil)
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				got, err := login.Wait(wctx)
				cancel()
				if err != nil || got != loc {
					t.Fatalf("the listener got %q (%v), want %q", got, err, loc)
				}
				tok, err := login.Finish(ctx, got)
				if err != nil {
					t.Fatalf("redeem: %v", err)
				}
				m := meWith(t, env, tok.AccessToken)
				if i == 0 {
					sub, _ = m["sub"].(string)
					if prof, _ := m["profile"].(map[string]any); prof["nickname"] != nick {
						t.Fatalf("profile %v, want the form's nickname %s", m["profile"], nick)
					}
				} else if m["sub"] != sub {
					t.Fatalf("returning user sub %v, want %s", m["sub"], sub)
				}
				current := 0
				for _, s := range sessionsOf(t, env, tok.AccessToken) {
					if s["current"] == true {
						current++
						if s["kind"] != "native" || s["idp"] != p {
							t.Fatalf("current session %v, want kind native, idp %s", s, p)
						}
					}
				}
				if current != 1 {
					t.Fatalf("%d current sessions, want 1", current)
				}
				next, err := app.Refresh(ctx, tok.RefreshToken)
				if err != nil || next.RefreshToken == tok.RefreshToken {
					t.Fatalf("refresh: %+v %v", next, err)
				}
				if _, err := app.Refresh(ctx, next.RefreshToken); err != nil {
					t.Fatalf("second refresh: %v", err)
				}
			}
		})
	}
}

// A private-use scheme redirect, under signup.mode auto: the browser's
// last hop is a 303 to com.example.app:/oauth2redirect?code=…&state=…,
// which the operating system hands to the app. The code is stored only as
// a hash; a second use revokes the session it started.
func TestNativePrivateSchemeAndReplay(t *testing.T) {
	t.Parallel()
	env, app := nativeEnv(t, brokertest.Options{Providers: []string{"kakao", "naver"}, Signup: "auto"})
	ctx := context.Background()
	login := app.Start("kakao", privateRedirect, url.Values{"prompt": {"login"}})
	c := env.Client()
	loc := browse(t, env, c, "kakao", login.URL, "")
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "com.example.app" || u.Opaque != "" || u.Path != "/oauth2redirect" || u.Query().Get("state") != login.State {
		t.Fatalf("final redirect %q", loc)
	}
	code := u.Query().Get("code")
	sum := sha256.Sum256(mustB64(t, code))
	if n := count(t, env, `SELECT count(*) FROM native_codes WHERE hash = $1 AND client_id = 'com.example.app' AND redirect_uri = $2`, sum[:], privateRedirect); n != 1 {
		t.Fatalf("code rows stored by hash = %d, want 1", n)
	}
	if n := count(t, env, `SELECT count(*) FROM native_codes WHERE hash = $1`, []byte(code)); n != 0 {
		t.Fatal("the code is stored as it was sent")
	}
	tok, err := login.Finish(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	meWith(t, env, tok.AccessToken)

	// The same code again: invalid_grant, and the session is revoked.
	_, err = login.Redeem(ctx, code, login.Verifier)
	wantOAuthError(t, err, 400, "invalid_grant")
	if _, err := app.Refresh(ctx, tok.RefreshToken); err == nil {
		t.Fatal("the session of a replayed code still refreshes")
	}
	if n := count(t, env, `SELECT count(*) FROM sessions WHERE revoked_reason = 'reuse_detected'`); n != 1 {
		t.Fatalf("revoked sessions = %d, want 1", n)
	}
}

func count(t *testing.T, env *brokertest.Env, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := env.Store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantOAuthError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var oe *nativeapp.Error
	if !errors.As(err, &oe) || oe.Status != status || oe.Code != code {
		t.Fatalf("err = %v, want %d %s", err, status, code)
	}
}

// A code presented with another client, another redirect URI or a wrong
// verifier is refused, and used up: the right redemption after it fails
// too, and its session is gone. Also an expired code.
func TestNativeCodeBindings(t *testing.T) {
	t.Parallel()
	clock := brokertest.NewClock(time.Now())
	env, app := nativeEnv(t, brokertest.Options{Providers: []string{"naver"}, Signup: "auto", Clock: clock})
	ctx := context.Background()
	other := &nativeapp.App{Issuer: env.URL, ClientID: "com.example.other"}
	for name, tc := range map[string]func(l *nativeapp.Login, code string) error{
		"another client": func(l *nativeapp.Login, code string) error {
			ol := other.Start("naver", "com.example.other:/cb", nil)
			ol.Verifier = l.Verifier
			_, err := ol.Redeem(ctx, code, l.Verifier)
			return err
		},
		"another redirect uri": func(l *nativeapp.Login, code string) error {
			l2 := *l
			l2.RedirectURI = "https://app.example.com/native/cb"
			_, err := l2.Redeem(ctx, code, l.Verifier)
			return err
		},
		"wrong verifier": func(l *nativeapp.Login, code string) error {
			_, err := l.Redeem(ctx, code, strings.Repeat("v", 43))
			return err
		},
		"expired": func(l *nativeapp.Login, code string) error {
			clock.Advance(61 * time.Second)
			_, err := l.Redeem(ctx, code, l.Verifier)
			return err
		},
		"not a code": func(l *nativeapp.Login, code string) error {
			_, err := l.Redeem(ctx, code[:40]+"AAA", l.Verifier)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			login := app.Start("naver", privateRedirect, nil)
			loc := browse(t, env, env.Client(), "naver", login.URL, "")
			code, err := login.Code(loc)
			if err != nil {
				t.Fatal(err)
			}
			wantOAuthError(t, tc(login, code), 400, "invalid_grant")
			_, err = login.Redeem(ctx, code, login.Verifier)
			if name == "not a code" {
				if err != nil {
					t.Fatalf("the real code after a made-up one: %v", err)
				}
				return
			}
			wantOAuthError(t, err, 400, "invalid_grant")
			if n := count(t, env, `SELECT count(*) FROM native_codes WHERE hash = $1`, hashOf(t, code)); n != 0 {
				t.Fatalf("refused code and its session kept: %d rows", n)
			}
		})
	}
}

func hashOf(t *testing.T, code string) []byte {
	sum := sha256.Sum256(mustB64(t, code))
	return sum[:]
}

// Every bad start is a 400 page before anything happens: no redirect, no
// flow cookie, no provider call, nothing written.
func TestNativeBadStarts(t *testing.T) {
	t.Parallel()
	env, _ := nativeEnv(t, brokertest.Options{Providers: []string{"naver"}})
	good := url.Values{
		"client_id": {"com.example.app"}, "redirect_uri": {privateRedirect}, "state": {"s1"},
		"code_challenge": {nativeapp.Challenge(strings.Repeat("x", 43))}, "code_challenge_method": {"S256"},
	}
	with := func(k, v string) string {
		q := url.Values{}
		for kk, vv := range good {
			q[kk] = vv
		}
		if v == "<none>" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q.Encode()
	}
	cases := map[string]struct{ query, code string }{
		"unknown client":             {with("client_id", "com.evil.app"), "invalid_client"},
		"no client":                  {with("client_id", "<none>"), "invalid_client"},
		"unregistered redirect":      {with("redirect_uri", "com.evil.app:/cb"), "invalid_redirect_uri"},
		"another client's redirect":  {with("redirect_uri", "com.example.other:/cb"), "invalid_redirect_uri"},
		"redirect with extra query":  {with("redirect_uri", privateRedirect+"?next=evil"), "invalid_redirect_uri"},
		"redirect with fragment":     {with("redirect_uri", privateRedirect+"#x"), "invalid_redirect_uri"},
		"loopback on another path":   {with("redirect_uri", "http://127.0.0.1:5000/other"), "invalid_redirect_uri"},
		"localhost":                  {with("redirect_uri", "http://localhost:5000/callback"), "invalid_redirect_uri"},
		"no redirect":                {with("redirect_uri", "<none>"), "invalid_redirect_uri"},
		"no challenge":               {with("code_challenge", "<none>"), "invalid_request"},
		"no challenge method":        {with("code_challenge_method", "<none>"), "invalid_request"},
		"plain challenge":            {with("code_challenge_method", "plain"), "invalid_request"},
		"short challenge":            {with("code_challenge", "abc"), "invalid_request"},
		"state over 512":             {with("state", strings.Repeat("s", 513)), "invalid_request"},
		"state with a control":       {with("state", "a\nb"), "invalid_request"},
		"implicit grant":             {with("response_type", "token"), "invalid_request"},
		"with return_to":             {with("return_to", "https://app.example.com/"), "invalid_request"},
		"client_id twice":            {with("x", "y") + "&client_id=com.example.other", "invalid_request"},
		"redirect_uri twice":         {with("x", "y") + "&redirect_uri=com.example.other:/cb", "invalid_request"},
		"challenge without a client": {"code_challenge=" + good.Get("code_challenge") + "&code_challenge_method=S256", "invalid_client"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := do(t, env.Client(), "GET", env.URL+"/auth/login/naver?"+tc.query, nil, nil)
			wantStatus(t, r, 400)
			if !strings.Contains(string(r.body), `<code id="error-code">`+tc.code+`</code>`) {
				t.Fatalf("page does not show %s: %s", tc.code, r.body)
			}
			if loc := r.Header.Get("Location"); loc != "" || len(r.Cookies()) != 0 {
				t.Fatalf("a refused start redirected (%q) or set cookies %v", loc, r.Cookies())
			}
		})
	}
	// 512 characters is fine.
	r := do(t, env.Client(), "GET", env.URL+"/auth/login/naver?"+with("state", strings.Repeat("s", 512)), nil, nil)
	wantStatus(t, r, 302)
	if env.Emulators["naver"].CallCount("/oauth2.0/token") != 0 {
		t.Fatal("a provider was called")
	}
	for _, table := range []string{"users", "sessions", "native_codes"} {
		if n := countRows(t, env, table); n != 0 {
			t.Fatalf("%s rows = %d, want 0", table, n)
		}
	}
	// Linking from an app is not supported.
	tok, _ := env.NewSession(t, env.NewUser(t, "naver", "linker"))
	r = do(t, env.Client(), "GET", env.URL+"/auth/link/naver?"+with("x", "y"), nil, withCookie(tok))
	wantStatus(t, r, 400)
	if r.Header.Get("Location") != "" {
		t.Fatal("a native link start redirected")
	}
}

// The token endpoint refuses incomplete or misplaced requests as JSON 400s.
func TestNativeTokenRequests(t *testing.T) {
	t.Parallel()
	env, _ := nativeEnv(t, brokertest.Options{Providers: []string{"naver"}})
	full := url.Values{"grant_type": {"authorization_code"}, "code": {strings.Repeat("A", 43)}, "redirect_uri": {privateRedirect},
		"client_id": {"com.example.app"}, "code_verifier": {strings.Repeat("v", 43)}}
	for name, tc := range map[string]struct {
		drop, set, val, code string
		query                string
	}{
		"unknown code":      {code: "invalid_grant"},
		"no code":           {drop: "code", code: "invalid_request"},
		"no verifier":       {drop: "code_verifier", code: "invalid_request"},
		"no client":         {drop: "client_id", code: "invalid_request"},
		"no redirect":       {drop: "redirect_uri", code: "invalid_request"},
		"short verifier":    {set: "code_verifier", val: "abc", code: "invalid_request"},
		"verifier bad char": {set: "code_verifier", val: strings.Repeat("v", 42) + "+", code: "invalid_request"},
		"code in the URL":   {query: "?code=x", code: "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range full {
				f[k] = v
			}
			if tc.drop != "" {
				f.Del(tc.drop)
			}
			if tc.set != "" {
				f.Set(tc.set, tc.val)
			}
			r := do(t, env.Client(), "POST", env.URL+"/auth/token"+tc.query, f, nil)
			wantStatus(t, r, 400)
			if b := r.json(t); b.Error != tc.code || b.ErrorDescription == "" || r.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("%s: %s, want %s", name, r.body, tc.code)
			}
		})
	}
}

// Failures after the redirect URI was checked go back to the app where
// RFC 6749 has a code for them, with the app's state; others stay pages.
func TestNativeFailuresGoToTheApp(t *testing.T) {
	t.Parallel()
	env, app := nativeEnv(t, brokertest.Options{Providers: []string{"naver", "oauth2"}})
	ctx := context.Background()

	// The user declines at the provider.
	login := app.Start("naver", privateRedirect, nil)
	c := env.Client()
	r := do(t, c, "GET", login.URL, nil, nil)
	wantStatus(t, r, 302)
	cb, err := env.Emulators["naver"].Deny(ctx, r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	r = do(t, c, "GET", cb.String(), nil, nil)
	wantStatus(t, r, 303)
	_, err = login.Finish(ctx, r.Header.Get("Location"))
	var oe *nativeapp.Error
	if !errors.As(err, &oe) || oe.Code != "access_denied" {
		t.Fatalf("declined: %q → %v", r.Header.Get("Location"), err)
	}

	// The provider's token endpoint fails: server_error.
	env.Emulators["oauth2"].SetFaults(fakeidp.Faults{TokenStatus: 500})
	login = app.Start("oauth2", privateRedirect, nil)
	r = do(t, c, "GET", login.URL, nil, nil)
	r = do(t, c, "GET", approve(t, env, "oauth2", r.Header.Get("Location")), nil, nil)
	wantStatus(t, r, 303)
	if _, err := login.Finish(ctx, r.Header.Get("Location")); !errors.As(err, &oe) || oe.Code != "server_error" || oe.Description != "provider_error" {
		t.Fatalf("provider failure: %q → %v", r.Header.Get("Location"), err)
	}
	env.Emulators["oauth2"].SetFaults(fakeidp.Faults{})

	// A callback without the flow cookie is the broker's page.
	login = app.Start("naver", privateRedirect, nil)
	r = do(t, c, "GET", login.URL, nil, nil)
	cbURL := approve(t, env, "naver", r.Header.Get("Location"))
	r = do(t, env.Client(), "GET", cbURL, nil, nil)
	wantStatus(t, r, 400)
	if r.Header.Get("Location") != "" {
		t.Fatal("a callback without its flow redirected")
	}
	for _, table := range []string{"users", "sessions", "native_codes"} {
		if n := countRows(t, env, table); n != 0 {
			t.Fatalf("%s rows = %d, want 0", table, n)
		}
	}
}

// The largest app request (a 512-character state, a long registered
// redirect URI) still fits the flow and signup cookies through a new
// user's signup form, with the provider's grant kept.
func TestNativeLargestRequestFits(t *testing.T) {
	t.Parallel()
	long := "https://app.example.com/native/" + strings.Repeat("p", 400)
	o := brokertest.Options{Providers: []string{"kakao"}, Extra: "native_apps:\n  - client_id: com.example.app\n    redirect_uris: [\"" + long + "\"]\n"}
	env := brokertest.New(t, o)
	app := &nativeapp.App{Issuer: env.URL, ClientID: "com.example.app"}
	login := app.Start("kakao", long, nil)
	login.State = strings.Repeat("~", 512)
	login.URL = strings.Replace(login.URL, "state=", "state="+strings.Repeat("~", 512)+"&x=", 1)
	c := env.Client()
	rec := &setCookieSizes{next: http.DefaultTransport}
	c.Transport = rec
	loc := browse(t, env, c, "kakao", login.URL, "big")
	if _, err := login.Finish(context.Background(), loc); err != nil {
		t.Fatalf("%s: %v", loc, err)
	}
	// Browsers keep cookies of up to 4096 bytes (name, value and attributes).
	if rec.max == 0 || rec.max > 4096 {
		t.Fatalf("largest Set-Cookie %d bytes", rec.max)
	}
	t.Logf("largest Set-Cookie: %d bytes", rec.max)
}

type setCookieSizes struct {
	next http.RoundTripper
	max  int
}

func (s *setCookieSizes) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil {
		for _, v := range resp.Header.Values("Set-Cookie") {
			s.max = max(s.max, len(v))
		}
	}
	return resp, err
}
