package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/storage"
)

// appleForm starts an Apple login in c and plays the user at the emulator:
// the form Apple's page POSTs to the broker.
func appleForm(t *testing.T, env *brokertest.Env, c *http.Client, deny bool) *fakeidp.FormPost {
	t.Helper()
	authURL := startLogin(t, env, c, "apple", "")
	answer := env.Emulators["apple"].ApproveForm
	if deny {
		answer = env.Emulators["apple"].DenyForm
	}
	fp, err := answer(context.Background(), authURL)
	if err != nil {
		t.Fatalf("apple consent: %v", err)
	}
	return fp
}

var continueRE = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]+)">`)

// postApple does what the browser does with Apple's form: a cross-site
// POST, which carries none of the broker's SameSite=Lax cookies (so it is
// sent without c's jar), then the navigation the broker's answer asks for,
// in c with the cookie the POST set. It returns the POST's and the
// navigation's answers.
func postApple(t *testing.T, env *brokertest.Env, c *http.Client, fp *fakeidp.FormPost) (post, next response) {
	t.Helper()
	bare := env.Client()
	post = do(t, bare, "POST", fp.Action.String(), fp.Values, map[string]string{"Origin": env.Emulators["apple"].URL()})
	if post.StatusCode != 200 {
		return post, response{}
	}
	if post.Header.Get("Location") != "" {
		t.Errorf("the form_post answer has a Location: %s", post.Header.Get("Location"))
	}
	for _, v := range fp.Values {
		if strings.Contains(string(post.body), v[0]) {
			t.Errorf("the form_post answer repeats a posted value")
		}
	}
	m := continueRE.FindSubmatch(post.body)
	if m == nil {
		t.Fatalf("form_post answer without a meta refresh: %s", post.body)
	}
	target, _ := url.Parse(env.URL)
	next_, err := target.Parse(strings.ReplaceAll(string(m[1]), "&amp;", "&"))
	if err != nil || next_.RawQuery != "form_post=1" || next_.Path != "/auth/callback/apple" {
		t.Fatalf("continuation %s", m[1])
	}
	if c.Jar != nil {
		c.Jar.SetCookies(target, post.Cookies())
	}
	return post, do(t, c, "GET", next_.String(), nil, nil)
}

// signup submits the signup form r shows, keeping its prefilled nickname.
func signupPrefilled(t *testing.T, env *brokertest.Env, c *http.Client, r response) (nickname string, final response) {
	t.Helper()
	wantStatus(t, r, 200)
	m := csrfRE.FindSubmatch(r.body)
	v := regexp.MustCompile(`name="nickname"[^>]*value="([^"]*)"`).FindSubmatch(r.body)
	if m == nil || v == nil {
		t.Fatalf("signup form without csrf_token or a prefilled nickname: %s", r.body)
	}
	nickname = string(v[1])
	return nickname, do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {string(m[1])}, "nickname": {nickname}}, nil)
}

func appleEnv(t *testing.T, signup string) *brokertest.Env {
	return brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "apple"}, Signup: signup})
}

// secretsLeaked reports posted or issued secrets found in the logs.
func checkLogs(t *testing.T, env *brokertest.Env, secrets ...string) {
	t.Helper()
	logs := env.Logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("the log holds a secret (%.12s…)", s)
		}
	}
	for _, c := range env.Emulators["apple"].Calls() {
		if cs := c.Form.Get("client_secret"); cs != "" && strings.Contains(logs, cs) {
			t.Error("the log holds a client secret")
		}
	}
}

// The web login through form_post: the first one signs up with the name
// Apple posted, a returning one signs in and keeps it.
func TestAppleWebLogin(t *testing.T) {
	t.Parallel()
	env := appleEnv(t, "form")
	c := env.Client()
	fp := appleForm(t, env, c, false)
	if fp.Values.Get("user") == "" || fp.Values.Get("code") == "" || fp.Values.Get("id_token") == "" {
		t.Fatalf("first consent posts %v", fp.Values)
	}
	post, next := postApple(t, env, c, fp)
	ck := post.cookie("broker_formpost")
	if ck == nil || !ck.HttpOnly || ck.MaxAge > 60 || ck.MaxAge <= 0 || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/auth/callback/" {
		t.Fatalf("form_post cookie %+v", ck)
	}
	nick, r := signupPrefilled(t, env, c, next)
	if nick != "Alex Appleseed" {
		t.Fatalf("signup prefilled with %q, want the posted name", nick)
	}
	wantStatus(t, r, 303)
	if got := me(t, env, c)["profile"].(map[string]any)["nickname"]; got != "Alex Appleseed" {
		t.Fatalf("profile nickname %v", got)
	}
	userID, err := env.Store.IdentityUser(context.Background(), "apple", brokertest.Users["apple"].Subject)
	if err != nil {
		t.Fatal(err)
	}
	_, idents, _ := env.Store.User(context.Background(), userID)
	if len(idents) != 1 || idents[0].GrantEnc == nil {
		t.Fatalf("identity %+v: want the grant kept", idents)
	}

	// Returning: no user posted this time; the session starts and the
	// name stays.
	c2 := env.Client()
	fp2 := appleForm(t, env, c2, false)
	if fp2.Values.Get("user") != "" {
		t.Fatalf("a returning consent posted user")
	}
	_, next2 := postApple(t, env, c2, fp2)
	wantStatus(t, next2, 303)
	if loc := next2.Header.Get("Location"); loc != "https://app.example.com/" {
		t.Fatalf("returning login ends at %s", loc)
	}
	if got := me(t, env, c2)["profile"].(map[string]any)["nickname"]; got != "Alex Appleseed" {
		t.Fatalf("after a returning login, nickname %v", got)
	}
	if countRows(t, env, "users") != 1 {
		t.Fatal("a second user")
	}
	checkLogs(t, env, fp.Values.Get("code"), fp.Values.Get("id_token"), fp.Values.Get("user"), fp2.Values.Get("code"), "Appleseed")
}

// Under an https issuer the posted values wait in a __Host- cookie.
func TestAppleWebLoginTLS(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"apple"}, Signup: "auto", TLS: true})
	c := env.Client()
	post, next := postApple(t, env, c, appleForm(t, env, c, false))
	if ck := post.cookie("__Host-broker_formpost"); ck == nil || ck.Path != "/" || !ck.Secure {
		t.Fatalf("form_post cookie %+v", ck)
	}
	wantStatus(t, next, 303)
}

func TestAppleFormPostRefusals(t *testing.T) {
	t.Parallel()
	env := appleEnv(t, "auto")
	nothingWritten := func(step string) {
		t.Helper()
		if u, s := countRows(t, env, "users"), countRows(t, env, "sessions"); u != 0 || s != 0 {
			t.Fatalf("%s: %d users, %d sessions written", step, u, s)
		}
	}
	errCode := func(r response) string {
		m := regexp.MustCompile(`id="error-code"[^>]*>([^<]*)<`).FindSubmatch(r.body)
		if m == nil {
			return ""
		}
		return strings.TrimSpace(string(m[1]))
	}
	// A user field that is not JSON: refused at the POST, nothing kept.
	c := env.Client()
	fp := appleForm(t, env, c, false)
	fp.Values.Set("user", "{not json")
	post, _ := postApple(t, env, c, fp)
	if post.StatusCode != 400 || post.cookie("broker_formpost") != nil || !strings.Contains(errCode(post), "invalid_request") {
		t.Fatalf("non-JSON user: %d %s", post.StatusCode, errCode(post))
	}
	nothingWritten("non-JSON user")

	// No state, or state twice.
	fp = appleForm(t, env, env.Client(), false)
	noState := url.Values{"code": {fp.Values.Get("code")}}
	wantStatus(t, do(t, env.Client(), "POST", fp.Action.String(), noState, nil), 400)
	twice := url.Values{"code": {"a"}, "state": {"s", "t"}}
	wantStatus(t, do(t, env.Client(), "POST", fp.Action.String(), twice, nil), 400)

	// A POSTed callback in a browser that holds no state cookie (never
	// started this login): the POST is answered, the continuation refused.
	_, next := postApple(t, env, env.Client(), fp)
	if next.StatusCode != 400 || errCode(next) != "invalid_state" {
		t.Fatalf("without the state cookie: %d %s", next.StatusCode, errCode(next))
	}
	nothingWritten("without the state cookie")

	// The continuation without the posted values.
	c = env.Client()
	startLogin(t, env, c, "apple", "")
	r := do(t, c, "GET", env.URL+"/auth/callback/apple?form_post=1", nil, nil)
	if r.StatusCode != 400 || errCode(r) != "invalid_state" {
		t.Fatalf("continuation without values: %d %s", r.StatusCode, errCode(r))
	}
	nothingWritten("continuation without values")

	// Cancelled at Apple: user_cancelled_authorize, the access denied page.
	c = env.Client()
	_, next = postApple(t, env, c, appleForm(t, env, c, true))
	if next.StatusCode != 403 || errCode(next) != "access_denied" {
		t.Fatalf("cancelled: %d %s", next.StatusCode, errCode(next))
	}
	nothingWritten("cancelled")

	// The sealed values expire after a minute.
	c = env.Client()
	fp = appleForm(t, env, c, false)
	bare := env.Client()
	post = do(t, bare, "POST", fp.Action.String(), fp.Values, nil)
	wantStatus(t, post, 200)
	env.Clock.Advance(61 * time.Second)
	target, _ := url.Parse(env.URL)
	c.Jar.SetCookies(target, post.Cookies())
	r = do(t, c, "GET", env.URL+"/auth/callback/apple?form_post=1", nil, nil)
	if r.StatusCode != 400 || errCode(r) != "invalid_state" {
		t.Fatalf("after a minute: %d %s", r.StatusCode, errCode(r))
	}
	nothingWritten("expired values")

	// A replayed POST: the login completes once, the replay is refused.
	c = env.Client()
	fp = appleForm(t, env, c, false)
	_, next = postApple(t, env, c, fp)
	wantStatus(t, next, 303)
	_, again := postApple(t, env, c, fp)
	if again.StatusCode != 400 || errCode(again) != "invalid_state" {
		t.Fatalf("replayed POST: %d %s", again.StatusCode, errCode(again))
	}
	if s := countRows(t, env, "sessions"); s != 1 {
		t.Fatalf("sessions after a replay: %d", s)
	}

	// Providers that do not use form_post refuse the POST.
	r = do(t, env.Client(), "POST", env.URL+"/auth/callback/kakao", url.Values{"code": {"x"}, "state": {"y"}}, nil)
	if r.StatusCode != 405 || !strings.Contains(r.Header.Get("Allow"), "GET") {
		t.Fatalf("POST to kakao's callback: %d Allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
	wantStatus(t, do(t, env.Client(), "POST", env.URL+"/auth/callback/nope", url.Values{"state": {"y"}}, nil), 404)
	checkLogs(t, env, fp.Values.Get("code"), fp.Values.Get("id_token"))
}

// notify POSTs an Apple notification body.
func notify(t *testing.T, env *brokertest.Env, body []byte) response {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/auth/webhooks/apple/apple", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := env.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b [4096]byte
	n, _ := resp.Body.Read(b[:])
	return response{resp, b[:n]}
}

func TestAppleNotifications(t *testing.T) {
	t.Parallel()
	env := appleEnv(t, "auto")
	ctx := context.Background()
	emu := env.Emulators["apple"]
	sub := brokertest.Users["apple"].Subject
	// One user whose only identity is Apple's (signed in), one with Kakao
	// and Apple (a live session).
	c := env.Client()
	_, next := postApple(t, env, c, appleForm(t, env, c, false))
	wantStatus(t, next, 303)
	only, _ := env.Store.IdentityUser(ctx, "apple", sub)
	both := env.NewUser(t, "kakao", "77")
	_, sess := env.NewSession(t, both)
	if _, err := env.Store.LinkIdentity(ctx, sess.ID, storage.Identity{Provider: "apple", Subject: "000777.both.0001"}, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	state := func() (users, liveSessions, identities, audit int) {
		q := func(sql string) int {
			var n int
			if err := env.Store.Pool().QueryRow(ctx, sql).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		return q(`SELECT count(*) FROM users`), q(`SELECT count(*) FROM sessions WHERE revoked_at IS NULL`),
			q(`SELECT count(*) FROM identities`), q(`SELECT count(*) FROM audit_log`)
	}
	u0, s0, i0, a0 := state()

	// Forged or malformed: 400, nothing changes.
	revoke := fakeidp.AppleEvent{Type: "account-delete", Subject: sub}
	for _, f := range []fakeidp.IDTokenFault{fakeidp.BadSignature, fakeidp.WrongIssuer, fakeidp.WrongAudience, fakeidp.Expired,
		fakeidp.AttackerKey, fakeidp.AlgNone, fakeidp.HS256WithPublicKey, fakeidp.EmbeddedJWK, fakeidp.FutureIssuedAt} {
		if r := notify(t, env, emu.AppleNotification(revoke, f)); r.StatusCode != 400 || r.json(t).Error != "invalid_request" {
			t.Errorf("%s: %d %s", f, r.StatusCode, r.body)
		}
	}
	old := revoke
	for name, body := range map[string][]byte{
		"not JSON": []byte("payload=x"), "no payload": []byte(`{}`), "empty payload": []byte(`{"payload":""}`),
		"not a JWS": []byte(`{"payload":"a.b.c"}`),
		"no type":   emu.AppleNotification(fakeidp.AppleEvent{Subject: sub}, ""),
	} {
		if r := notify(t, env, body); r.StatusCode != 400 {
			t.Errorf("%s: %d %s", name, r.StatusCode, r.body)
		}
	}
	env.Clock.Advance(-80 * time.Hour)
	stale := emu.AppleNotification(old, "")
	env.Clock.Advance(80 * time.Hour)
	if r := notify(t, env, stale); r.StatusCode != 400 {
		t.Errorf("a notification 80 h old: %d", r.StatusCode)
	}
	if u, s, i, a := state(); u != u0 || s != s0 || i != i0 || a != a0 {
		t.Fatalf("refused notifications changed something: users %d→%d sessions %d→%d identities %d→%d audit %d→%d", u0, u, s0, s, i0, i, a0, a)
	}

	// email-disabled, a repeat, an older email-enabled, a newer one.
	t0 := env.Clock.Now()
	f := false
	dis := fakeidp.AppleEvent{Type: "email-disabled", Subject: "000777.both.0001", Email: "x@privaterelay.appleid.com", IsPrivateEmail: &f, Time: t0}
	profile := func() map[string]string {
		_, ids, _ := env.Store.User(ctx, both)
		for _, i := range ids {
			if i.Provider == "apple" {
				return i.Profile
			}
		}
		return nil
	}
	wantStatus(t, notify(t, env, emu.AppleNotification(dis, "")), 200)
	if p := profile(); p["email_forwarding"] != "disabled" || p["email"] != "x@privaterelay.appleid.com" || p["is_private_email"] != "false" {
		t.Fatalf("after email-disabled: %v", p)
	}
	_, _, _, a1 := state()
	wantStatus(t, notify(t, env, emu.AppleNotification(dis, "")), 200)
	en := dis
	en.Type, en.Time = "email-enabled", t0.Add(-time.Minute)
	wantStatus(t, notify(t, env, emu.AppleNotification(en, "")), 200)
	if _, _, _, a := state(); a != a1 || profile()["email_forwarding"] != "disabled" {
		t.Fatalf("a repeat or an older event changed the profile: %v", profile())
	}
	en.Time = t0.Add(time.Minute)
	en.EventsAsObject = true
	wantStatus(t, notify(t, env, emu.AppleNotification(en, "")), 200)
	if p := profile(); p["email_forwarding"] != "enabled" {
		t.Fatalf("after email-enabled: %v", p)
	}

	// consent-revoked of the user with two identities: Apple's goes, the
	// user stays, its sessions end. A repeat changes nothing more.
	cr := fakeidp.AppleEvent{Type: "consent-revoked", Subject: "000777.both.0001", Audience: "apple-native"}
	wantStatus(t, notify(t, env, emu.AppleNotification(cr, "")), 200)
	if _, ids, err := env.Store.User(ctx, both); err != nil || len(ids) != 1 || ids[0].Provider != "kakao" {
		t.Fatalf("after consent-revoked: %+v %v", ids, err)
	}
	if s, _ := env.Store.Session(ctx, sess.ID); s.RevokedAt == nil {
		t.Fatal("the user's session is still live")
	}
	_, _, _, a2 := state()
	wantStatus(t, notify(t, env, emu.AppleNotification(cr, "")), 200)
	if _, _, _, a := state(); a != a2 {
		t.Fatal("a repeated consent-revoked wrote again")
	}

	// account-deleted (events as an object) of the Apple-only user: deleted.
	del := fakeidp.AppleEvent{Type: "account-deleted", Subject: sub, EventsAsObject: true}
	wantStatus(t, notify(t, env, emu.AppleNotification(del, "")), 200)
	if _, _, err := env.Store.User(ctx, only); err == nil {
		t.Fatal("the Apple-only user survived account-delete")
	}
	// Unknown subjects and unknown types: 200, nothing to do.
	wantStatus(t, notify(t, env, emu.AppleNotification(fakeidp.AppleEvent{Type: "account-delete", Subject: "000000.nobody.0000"}, "")), 200)
	wantStatus(t, notify(t, env, emu.AppleNotification(fakeidp.AppleEvent{Type: "something-new", Subject: sub}, "")), 200)
	// A provider name that is not configured.
	req, _ := http.NewRequest("POST", env.URL+"/auth/webhooks/apple/other", strings.NewReader(`{}`))
	if resp, err := env.Client().Do(req); err != nil || resp.StatusCode/100 != 4 {
		t.Fatalf("unknown name: %v %v", resp, err)
	}
	var events []string
	rows, _ := env.Store.Pool().Query(ctx, `SELECT type FROM events ORDER BY created_at`)
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		events = append(events, s)
	}
	rows.Close()
	if !strings.Contains(strings.Join(events, ","), "identity.unlinked") || !strings.Contains(strings.Join(events, ","), "user.deleted") {
		t.Errorf("events %v", events)
	}
}

// Deleting the account revokes Apple's refresh token through the outbox,
// with a client secret for the Services ID.
func TestAppleDeletionRevokes(t *testing.T) {
	t.Parallel()
	env := appleEnv(t, "auto")
	c := env.Client()
	fp := appleForm(t, env, c, false)
	_, next := postApple(t, env, c, fp)
	wantStatus(t, next, 303)
	tok := do(t, c, "POST", env.URL+"/auth/token", nil, nil).json(t).AccessToken
	wantStatus(t, do(t, c, "DELETE", env.URL+"/auth/me", nil, bearer(tok)), 204)
	if done, failed, err := env.Broker.ProcessRevocations(context.Background()); err != nil || done != 1 || failed != 0 {
		t.Fatalf("revocations: %d done, %d failed, %v", done, failed, err)
	}
	var rv []fakeidp.Call
	for _, call := range env.Emulators["apple"].Calls() {
		if call.Path == "/auth/revoke" {
			rv = append(rv, call)
		}
	}
	if len(rv) != 1 || rv[0].Form.Get("client_id") != "apple-client" || rv[0].Form.Get("token_type_hint") != "refresh_token" ||
		rv[0].Form.Get("token") == "" || strings.Count(rv[0].Form.Get("client_secret"), ".") != 2 {
		t.Fatalf("revoke calls: %+v", rv)
	}
	// The grant is gone at Apple: the next consent is a first one again.
	if fp := appleForm(t, env, env.Client(), false); fp.Values.Get("user") == "" {
		t.Error("after revocation Apple still remembers the consent")
	}
	checkLogs(t, env, rv[0].Form.Get("token"), fp.Values.Get("code"))
}

// Unlinking Apple from an account revokes its grant too.
func TestAppleUnlinkRevokes(t *testing.T) {
	t.Parallel()
	env := appleEnv(t, "auto")
	c := env.Client()
	loginAs(t, env, c, "kakao", "")
	tok := do(t, c, "POST", env.URL+"/auth/token", nil, nil).json(t).AccessToken
	// Link Apple: the link start, then the form_post.
	r := do(t, c, "GET", env.URL+"/auth/link/apple", nil, nil)
	wantStatus(t, r, 302)
	fp, err := env.Emulators["apple"].ApproveForm(context.Background(), r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	_, next := postApple(t, env, c, fp)
	wantStatus(t, next, 303)
	wantStatus(t, do(t, c, "DELETE", env.URL+"/auth/identities/apple", nil, bearer(tok)), 204)
	if done, _, err := env.Broker.ProcessRevocations(context.Background()); err != nil || done != 1 {
		t.Fatalf("revocations: %d, %v", done, err)
	}
	if n := env.Emulators["apple"].CallCount("/auth/revoke"); n != 1 {
		t.Fatalf("revoke calls %d", n)
	}
}

func exchangeForm(idToken string, extra ...string) url.Values {
	f := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {idToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "provider": {"apple"}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

// Native: the exchange of Apple's id_token (aud a bundle ID) with its
// authorization code and the name iOS handed the app; the grant is kept and
// revoked with the bundle ID at deletion.
func TestAppleNativeExchange(t *testing.T) {
	t.Parallel()
	env := appleEnv(t, "auto")
	emu := env.Emulators["apple"]
	idt, code := emu.MintAppleNative("apple-native", nil)
	r := do(t, env.Client(), "POST", env.URL+"/auth/token", exchangeForm(idt, "authorization_code", code, "given_name", "Alex", "family_name", "Appleseed"), nil)
	wantStatus(t, r, 200)
	tb := r.json(t)
	m := do(t, env.Client(), "GET", env.URL+"/auth/me", nil, bearer(tb.AccessToken))
	var mb map[string]any
	_ = json.Unmarshal(m.body, &mb)
	if mb["profile"].(map[string]any)["nickname"] != "Alex Appleseed" {
		t.Fatalf("profile %v", mb["profile"])
	}
	userID, _ := env.Store.IdentityUser(context.Background(), "apple", brokertest.Users["apple"].Subject)
	_, ids, _ := env.Store.User(context.Background(), userID)
	if len(ids) != 1 || ids[0].GrantEnc == nil {
		t.Fatalf("identity %+v: want the grant kept", ids)
	}
	// A second exchange with a spent code: refused, nothing more written.
	idt2, _ := emu.MintAppleNative("apple-native", map[string]any{"jti": "second"})
	r = do(t, env.Client(), "POST", env.URL+"/auth/token", exchangeForm(idt2, "authorization_code", code), nil)
	if r.StatusCode != 400 || r.json(t).Error != "invalid_grant" {
		t.Fatalf("spent code: %d %s", r.StatusCode, r.body)
	}
	// Odd booleans in the id_token.
	odd, _ := emu.MintAppleNative("apple-native", map[string]any{"email_verified": "yes", "jti": "odd"})
	r = do(t, env.Client(), "POST", env.URL+"/auth/token", exchangeForm(odd), nil)
	if r.StatusCode != 400 || r.json(t).Error != "invalid_grant" {
		t.Fatalf("odd email_verified: %d %s", r.StatusCode, r.body)
	}
	// A returning app sign-in without a code works.
	idt3, _ := emu.MintAppleNative("apple-native", map[string]any{"jti": "third"})
	wantStatus(t, do(t, env.Client(), "POST", env.URL+"/auth/token", exchangeForm(idt3), nil), 200)
	if n := countRows(t, env, "users"); n != 1 {
		t.Fatalf("users %d", n)
	}
	wantStatus(t, do(t, env.Client(), "DELETE", env.URL+"/auth/me", nil, bearer(tb.AccessToken)), 204)
	if done, _, err := env.Broker.ProcessRevocations(context.Background()); err != nil || done != 1 {
		t.Fatalf("revocations: %d %v", done, err)
	}
	for _, call := range emu.Calls() {
		if call.Path == "/auth/revoke" && call.Form.Get("client_id") != "apple-native" {
			t.Errorf("native grant revoked as %s", call.Form.Get("client_id"))
		}
	}
	if emu.CallCount("/auth/revoke") != 1 {
		t.Error("no revocation")
	}
	checkLogs(t, env, code, idt, tb.RefreshToken)
}
