package broker_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/fakeidp"
)

// Garbage in every input of every endpoint is refused with a 4xx and a
// clear answer in the endpoint's format: never a 5xx, never a stack trace,
// SQL or an echo of the input, and nothing is written.
func TestHostileInputNeverFailsTheServer(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver"},
		Extra: "limits:\n  per_minute: { login: 0, callback: 0, token: 0 }\n"})
	c := env.Client()
	// Header values travel query-escaped (a client cannot send raw control
	// characters there); everything else raw.
	values := []string{
		"", " ", "\x00", "%00", "\xff\xfe", "'; DROP TABLE users; --", `"><script>alert(1)</script>`,
		"../../etc/passwd", "%2e%2e%2f", "\r\nSet-Cookie: x=1", "\u202e\u2066", strings.Repeat("A", 8<<10),
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "a.b.c", "null", "[]", "{}", "-1", "1e309", "０",
	}
	const marker = "hostile-marker-7f3a"
	var checked int
	check := func(name string, r response, api bool) {
		t.Helper()
		checked++
		body := string(r.body)
		if r.StatusCode >= 500 || r.StatusCode < 200 {
			t.Errorf("%s: status %d for %q: %.200s", name, r.StatusCode, r.Request.URL.RawQuery, body)
		}
		for _, bad := range []string{"goroutine ", "panic", "SQLSTATE", "pgx", "syntax error", marker, "<script>"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: the answer contains %q: %.200s", name, bad, body)
			}
		}
		if r.StatusCode >= 400 {
			ct := r.Header.Get("Content-Type")
			if api && ct != "application/json" {
				t.Errorf("%s: API error with Content-Type %q", name, ct)
			}
			if !api && !strings.HasPrefix(ct, "text/html") {
				t.Errorf("%s: page error with Content-Type %q", name, ct)
			}
		}
	}
	for _, v := range values {
		m := v + marker
		q := url.QueryEscape(m)
		check("login return_to", do(t, c, "GET", env.URL+"/auth/login/kakao?return_to="+q, nil, nil), false)
		check("login page return_to", do(t, c, "GET", env.URL+"/?return_to="+q, nil, nil), false)
		check("login provider", do(t, c, "GET", env.URL+"/auth/login/"+url.PathEscape(m), nil, nil), false)
		check("callback", do(t, c, "GET", env.URL+"/auth/callback/kakao?code="+q+"&state="+q, nil, nil), false)
		check("callback error", do(t, c, "GET", env.URL+"/auth/callback/naver?error="+q+"&error_description="+q+"&state="+q, nil, nil), false)
		check("callback cookie", do(t, c, "GET", env.URL+"/auth/callback/kakao?code=x&state=y", nil, map[string]string{"Cookie": "broker_state=" + q}), false)
		check("signup", do(t, c, "POST", env.URL+"/auth/signup", url.Values{"nickname": {m}, "csrf_token": {m}}, map[string]string{"Cookie": "broker_signup=" + q}), false)
		check("signup form", do(t, c, "GET", env.URL+"/auth/signup", nil, map[string]string{"Cookie": "broker_signup=" + q}), false)
		check("link", do(t, c, "GET", env.URL+"/auth/link/kakao?return_to="+q, nil, withCookie(q)), false)
		check("token cookie", do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(q)), true)
		check("token form", do(t, c, "POST", env.URL+"/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {m}}, nil), true)
		check("token grant", do(t, c, "POST", env.URL+"/auth/token", url.Values{"grant_type": {m}}, nil), true)
		check("exchange", do(t, c, "POST", env.URL+"/auth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token": {m}, "subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "provider": {"kakao"}}, nil), true)
		check("exchange provider", do(t, c, "POST", env.URL+"/auth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token": {"a.b.c"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "provider": {m}}, nil), true)
		check("logout", do(t, c, "POST", env.URL+"/auth/logout", url.Values{"refresh_token": {m}}, nil), true)
		check("me", do(t, c, "GET", env.URL+"/auth/me", nil, map[string]string{"Authorization": "Bearer " + q}), true)
		check("delete me", do(t, c, "DELETE", env.URL+"/auth/me", nil, map[string]string{"Authorization": q}), true)
		check("unlink", do(t, c, "DELETE", env.URL+"/auth/identities/"+url.PathEscape(m), nil, map[string]string{"Authorization": "Bearer " + q}), true)
		check("webhook", do(t, c, "POST", env.URL+"/auth/webhooks/kakao/unlink", url.Values{"user_id": {m}, "app_id": {m}}, map[string]string{"Authorization": "KakaoAK kakao-admin-key"}), true)
		check("webhook key", do(t, c, "POST", env.URL+"/auth/webhooks/kakao/unlink", url.Values{"user_id": {"1"}}, map[string]string{"Authorization": "KakaoAK " + q}), true)
	}
	t.Logf("%d hostile requests", checked)
	if u, s := countRows(t, env, "users"), countRows(t, env, "sessions"); u != 0 || s != 0 {
		t.Fatalf("hostile input wrote %d users and %d sessions", u, s)
	}
	// The honest path still works.
	wantStatus(t, do(t, env.Client(), "GET", env.URL+"/auth/login/kakao", nil, nil), 302)

	// The same values typed into a genuine signup form: clean text is
	// stored exactly (trimmed), anything else redisplays the form; the form
	// never reflects markup unescaped.
	created := 0
	for i, v := range values {
		env.Emulators["kakao"].SetUser(fakeidp.User{Subject: fmt.Sprint(7000 + i)})
		c := env.Client()
		r := do(t, c, "GET", approve(t, env, "kakao", startLogin(t, env, c, "kakao", "")), nil, nil)
		wantStatus(t, r, 200)
		csrf := string(csrfRE.FindSubmatch(r.body)[1])
		r = do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {csrf}, "nickname": {v}}, nil)
		check(fmt.Sprintf("signup nickname %q", v), r, false)
		switch r.StatusCode {
		case 303:
			created++
			if got := me(t, env, c)["profile"].(map[string]any)["nickname"]; got != strings.TrimSpace(v) {
				t.Errorf("nickname %q stored as %q", v, got)
			}
		case 400:
		default:
			t.Errorf("signup nickname %q: status %d, want 303 or 400", v, r.StatusCode)
		}
	}
	if u := countRows(t, env, "users"); u != created {
		t.Fatalf("users = %d after %d accepted signups", u, created)
	}
	t.Logf("signup: %d of %d hostile nicknames accepted as plain text", created, len(values))
}

// A provider that sends a NUL or a control character in a profile value
// still signs the user in, without the value; one that sends it in the
// subject, the identity's key, is refused with a clear page. Before this
// both were a 500 (Postgres refuses NUL in text and \u0000 in jsonb).
func TestUncleanProviderValues(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"oauth2", "google"}, Signup: "auto"})
	for _, p := range []string{"oauth2", "google"} {
		em := env.Emulators[p]
		em.SetUser(fakeidp.User{Subject: p + "-sub\x00x", Email: "x@example.com", EmailVerified: true})
		c := env.Client()
		r := do(t, c, "GET", approve(t, env, p, startLogin(t, env, c, p, "")), nil, nil)
		if r.StatusCode != 502 || !strings.Contains(string(r.body), `id="error-code">invalid_response<`) {
			t.Fatalf("%s: NUL in the subject: %d, want 502 invalid_response", p, r.StatusCode)
		}
		em.SetUser(fakeidp.User{Subject: p + "-42", Nickname: "nick\x00name", Name: "bidi\u202ename", Email: "x@example.com", EmailVerified: true})
		c = env.Client()
		wantStatus(t, do(t, c, "GET", approve(t, env, p, startLogin(t, env, c, p, "")), nil, nil), 303)
		profile, _ := me(t, env, c)["profile"].(map[string]any)
		for k, v := range profile {
			if s, _ := v.(string); !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\u202e") {
				t.Fatalf("%s: profile %s = %q kept", p, k, s)
			}
		}
	}
	if u := countRows(t, env, "users"); u != 2 {
		t.Fatalf("users = %d, want 2 (one per provider, the clean logins)", u)
	}
}
