package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/providers/providertest"
)

func bearer(at string) map[string]string { return map[string]string{"Authorization": "Bearer " + at} }

func currentAccess(t *testing.T, env *brokertest.Env, c *http.Client) string {
	t.Helper()
	r := do(t, c, "POST", env.URL+"/auth/token", nil, nil)
	wantStatus(t, r, 200)
	return r.json(t).AccessToken
}

// link runs /auth/link/{provider} for the browser c and returns the final answer.
func link(t *testing.T, env *brokertest.Env, c *http.Client, provider string) response {
	t.Helper()
	r := do(t, c, "GET", env.URL+"/auth/link/"+provider, nil, nil)
	wantStatus(t, r, 302)
	return do(t, c, "GET", approve(t, env, provider, r.Header.Get("Location")), nil, nil)
}

func identities(t *testing.T, env *brokertest.Env, c *http.Client) []string {
	t.Helper()
	var out []string
	ids, _ := me(t, env, c)["identities"].([]any)
	for _, i := range ids {
		out = append(out, i.(map[string]any)["provider"].(string))
	}
	return out
}

func TestLinkUnlinkAndDelete(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver", "google"}, Signup: "auto"})
	a := env.Client()
	loginAs(t, env, a, "kakao", "")
	r := link(t, env, a, "naver")
	wantStatus(t, r, 303)
	if got := identities(t, env, a); len(got) != 2 {
		t.Fatalf("identities after link = %v, want kakao and naver", got)
	}

	// Another user owns the Google identity: linking it is a 409 and changes nothing.
	b := env.Client()
	loginAs(t, env, b, "google", "")
	r = link(t, env, a, "google")
	wantStatus(t, r, 409)
	if !strings.Contains(string(r.body), "identity_conflict") {
		t.Fatalf("409 page lacks identity_conflict: %s", r.body)
	}
	if got := identities(t, env, b); len(got) != 1 || got[0] != "google" {
		t.Fatalf("b's identities after refused link = %v", got)
	}
	// Linking an identity the user already has is no conflict.
	wantStatus(t, link(t, env, a, "naver"), 303)
	// Linking needs a signed-in browser.
	wantStatus(t, do(t, env.Client(), "GET", env.URL+"/auth/link/google", nil, nil), 401)

	// Unlink naver, then the last one is refused.
	at := currentAccess(t, env, a)
	wantStatus(t, do(t, a, "DELETE", env.URL+"/auth/identities/naver", nil, bearer(at)), 204)
	last := do(t, a, "DELETE", env.URL+"/auth/identities/kakao", nil, bearer(at))
	wantStatus(t, last, 409)
	if last.json(t).Error != "last_identity" {
		t.Fatalf("error = %s, want last_identity", last.body)
	}
	wantStatus(t, do(t, a, "DELETE", env.URL+"/auth/identities/google", nil, bearer(at)), 404)
	if _, _, err := env.Broker.ProcessRevocations(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := env.Emulators["naver"].CallCount("/oauth2.0/revoke"); n != 1 {
		t.Fatalf("naver revoke calls after unlink = %d, want 1", n)
	}

	// Delete the account: 204, the earlier access token is refused, nothing is left.
	wantStatus(t, do(t, a, "DELETE", env.URL+"/auth/me", nil, bearer(at)), 204)
	wantStatus(t, do(t, a, "GET", env.URL+"/auth/me", nil, bearer(at)), 401)
	wantStatus(t, do(t, a, "POST", env.URL+"/auth/token", nil, nil), 401)
	if u := countRows(t, env, "users"); u != 1 { // b remains
		t.Fatalf("users = %d, want 1", u)
	}
	if _, _, err := env.Broker.ProcessRevocations(context.Background()); err != nil {
		t.Fatal(err)
	}
	var unlink *fakeidp.Call
	for _, c := range env.Emulators["kakao"].Calls() {
		if c.Path == "/v1/user/unlink" {
			c := c
			unlink = &c
		}
	}
	if unlink == nil || unlink.Authorization != "KakaoAK kakao-admin-key" || unlink.Form.Get("target_id_type") != "user_id" ||
		unlink.Form.Get("target_id") != brokertest.Users["kakao"].Subject {
		t.Fatalf("kakao unlink call = %+v", unlink)
	}
	if n := countRows(t, env, "revocations"); n != 0 {
		t.Fatalf("revocations left = %d, want 0", n)
	}
}

func TestRevocationRetriedUntilProviderRecovers(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"naver"}, Signup: "auto"})
	c := env.Client()
	loginAs(t, env, c, "naver", "")
	at := currentAccess(t, env, c)
	env.Emulators["naver"].SetFaults(fakeidp.Faults{RevokeStatus: 500})
	wantStatus(t, do(t, c, "DELETE", env.URL+"/auth/me", nil, bearer(at)), 204) // never blocked by the provider
	ctx := context.Background()
	if done, failed, err := env.Broker.ProcessRevocations(ctx); err != nil || done != 0 || failed != 1 {
		t.Fatalf("first attempt: done %d failed %d err %v; want 0, 1", done, failed, err)
	}
	if done, failed, _ := env.Broker.ProcessRevocations(ctx); done+failed != 0 {
		t.Fatal("retried before its backoff")
	}
	env.Emulators["naver"].SetFaults(fakeidp.Faults{})
	env.Clock.Advance(31 * time.Second)
	if done, failed, err := env.Broker.ProcessRevocations(ctx); err != nil || done != 1 || failed != 0 {
		t.Fatalf("retry: done %d failed %d err %v; want 1, 0", done, failed, err)
	}
	if n := env.Emulators["naver"].CallCount("/oauth2.0/revoke"); n != 2 {
		t.Fatalf("revoke calls = %d, want 2", n)
	}
	// A revocation failing for longer than 30 days is abandoned, with an
	// error in the log.
	loginAs(t, env, c, "naver", "")
	at = currentAccess(t, env, c)
	env.Emulators["naver"].SetFaults(fakeidp.Faults{RevokeStatus: 500})
	wantStatus(t, do(t, c, "DELETE", env.URL+"/auth/me", nil, bearer(at)), 204)
	if done, failed, _ := env.Broker.ProcessRevocations(ctx); done != 0 || failed != 1 {
		t.Fatalf("first attempt: done %d failed %d; want 0, 1", done, failed)
	}
	env.Clock.Advance(31 * 24 * time.Hour)
	if done, failed, _ := env.Broker.ProcessRevocations(ctx); done != 1 || failed != 0 || countRows(t, env, "revocations") != 0 {
		t.Fatalf("after 31 days: done %d failed %d, %d rows; want the row abandoned", done, failed, countRows(t, env, "revocations"))
	}
	if !strings.Contains(env.Logs.String(), "grant revocation abandoned") {
		t.Fatal("an abandoned revocation was not logged")
	}
	if strings.Contains(env.Logs.String(), "naver-secret") {
		t.Fatal("client secret in the logs")
	}
}

// Someone who deletes their account and signs up again with the same Kakao
// account before the outbox ran keeps the new grant: the pending unlink is
// cancelled when the identity comes back. Without the return, it runs.
func TestReturnBeforeRevocationCancelsIt(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	kakao := env.Emulators["kakao"]
	ctx := context.Background()
	c := env.Client()
	loginAs(t, env, c, "kakao", "")
	wantStatus(t, do(t, c, "DELETE", env.URL+"/auth/me", nil, bearer(currentAccess(t, env, c))), 204)
	if n := countRows(t, env, "revocations"); n != 1 {
		t.Fatalf("queued revocations = %d, want 1", n)
	}
	c = env.Client()
	loginAs(t, env, c, "kakao", "") // back before the outbox ran
	if done, failed, err := env.Broker.ProcessRevocations(ctx); err != nil || done+failed != 0 {
		t.Fatalf("outbox after the return: done %d failed %d err %v; want nothing to do", done, failed, err)
	}
	if n := kakao.CallCount("/v1/user/unlink"); n != 0 {
		t.Fatalf("unlink calls = %d, want 0", n)
	}
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, nil), 200)
	// A row the worker had already claimed when the identity came back: it
	// checks again before calling the provider.
	if _, err := env.Store.Pool().Exec(ctx, `INSERT INTO revocations (provider, subject, next_attempt_at, created_at)
		VALUES ('kakao', $1, $2, $2)`, brokertest.Users["kakao"].Subject, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if done, failed, err := env.Broker.ProcessRevocations(ctx); err != nil || done != 1 || failed != 0 {
		t.Fatalf("outbox with a row for a returned identity: done %d failed %d err %v; want 1 (cancelled), 0", done, failed, err)
	}
	if n := kakao.CallCount("/v1/user/unlink"); n != 0 {
		t.Fatalf("unlink calls = %d, want 0", n)
	}

	// Under signup.mode form the person proves the account at the callback,
	// before the form: the queued revocation is cancelled there.
	formEnv := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}})
	fc := formEnv.Client()
	loginAs(t, formEnv, fc, "kakao", "first")
	wantStatus(t, do(t, fc, "DELETE", formEnv.URL+"/auth/me", nil, bearer(currentAccess(t, formEnv, fc))), 204)
	if n := countRows(t, formEnv, "revocations"); n != 1 {
		t.Fatalf("form mode: queued revocations = %d, want 1", n)
	}
	fc = formEnv.Client()
	wantStatus(t, do(t, fc, "GET", approve(t, formEnv, "kakao", startLogin(t, formEnv, fc, "kakao", "")), nil, nil), 200) // the signup form
	if n := countRows(t, formEnv, "revocations"); n != 0 {
		t.Fatalf("form mode: queued revocations after the callback = %d, want 0", n)
	}

	// The honest path: deleted and not back, the grant is revoked.
	wantStatus(t, do(t, c, "DELETE", env.URL+"/auth/me", nil, bearer(currentAccess(t, env, c))), 204)
	if done, failed, err := env.Broker.ProcessRevocations(ctx); err != nil || done != 1 || failed != 0 {
		t.Fatalf("outbox: done %d failed %d err %v; want 1, 0", done, failed, err)
	}
	if n := kakao.CallCount("/v1/user/unlink"); n != 1 {
		t.Fatalf("unlink calls = %d, want 1", n)
	}
}

func TestKakaoUnlinkWebhook(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "google"}, Signup: "auto"})
	c := env.Client()
	loginAs(t, env, c, "kakao", "")
	hook := env.URL + "/auth/webhooks/kakao/unlink"
	form := url.Values{"app_id": {"1"}, "user_id": {brokertest.Users["kakao"].Subject}, "referrer_type": {"UNLINK_FROM_APPS"}}
	for name, hdr := range map[string]map[string]string{
		"missing": nil, "wrong": {"Authorization": "KakaoAK nope"}, "bearer": {"Authorization": "Bearer kakao-admin-key"},
	} {
		r := do(t, c, "POST", hook, form, hdr)
		if r.StatusCode != 401 {
			t.Fatalf("%s key: status %d, want 401", name, r.StatusCode)
		}
	}
	if u := countRows(t, env, "users"); u != 1 {
		t.Fatalf("users after refused webhooks = %d, want 1", u)
	}
	ok := map[string]string{"Authorization": "KakaoAK kakao-admin-key"}
	wantStatus(t, do(t, c, "POST", hook, url.Values{"app_id": {"1"}, "user_id": {"424242"}, "referrer_type": {"UNLINK_FROM_APPS"}}, ok), 200) // unknown user
	// A repeated user_id is refused rather than guessed at.
	wantStatus(t, do(t, c, "POST", hook, url.Values{"user_id": {"424242", brokertest.Users["kakao"].Subject}}, ok), 400)
	wantStatus(t, do(t, c, "GET", hook+"?user_id=424242&user_id="+brokertest.Users["kakao"].Subject, nil, ok), 400)
	if u := countRows(t, env, "users"); u != 1 {
		t.Fatalf("users after a repeated user_id = %d, want 1", u)
	}
	start := time.Now()
	wantStatus(t, do(t, c, "POST", hook, form, ok), 200)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("webhook took %v", d)
	}
	if u, s := countRows(t, env, "users"), countRows(t, env, "sessions"); u != 0 || s != 0 {
		t.Fatalf("after unlink of the only identity: %d users, %d sessions; want 0, 0", u, s)
	}
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, nil), 401)

	// A user with two identities keeps the other; their sessions end. GET works too.
	c2 := env.Client()
	loginAs(t, env, c2, "google", "")
	link(t, env, c2, "kakao")
	r := do(t, c2, "GET", hook+"?"+form.Encode(), nil, ok)
	wantStatus(t, r, 200)
	wantStatus(t, do(t, c2, "POST", env.URL+"/auth/token", nil, nil), 401)
	c3 := env.Client()
	loginAs(t, env, c3, "google", "")
	if got := identities(t, env, c3); len(got) != 1 || got[0] != "google" {
		t.Fatalf("identities after webhook = %v, want google", got)
	}
	if n := env.Emulators["kakao"].CallCount("/v1/user/unlink"); n != 0 {
		t.Fatalf("the webhook called Kakao back (%d unlink calls)", n)
	}
}

func exchange(t *testing.T, env *brokertest.Env, provider, idToken string) response {
	t.Helper()
	return exchangeWith(t, env, provider, idToken, "")
}

// exchangeWith is the RFC 8693 exchange of an id_token; nonce, when set, is
// the one the app expects.
func exchangeWith(t *testing.T, env *brokertest.Env, provider, idToken, nonce string) response {
	t.Helper()
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {idToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
		"provider":           {provider},
	}
	if nonce != "" {
		form.Set("nonce", nonce)
	}
	return do(t, &http.Client{}, "POST", env.URL+"/auth/token", form, nil)
}

func TestTokenExchange(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver", "google"}, Signup: "auto"})
	kakao := env.Emulators["kakao"]
	for _, aud := range []string{"kakao-client", "kakao-native"} { // REST key and native app key
		tok := kakao.MintIDToken(map[string]any{"aud": aud, "sub": "777" + aud[6:7]})
		r := exchange(t, env, "kakao", tok)
		wantStatus(t, r, 200)
		b := r.json(t)
		if b.AccessToken == "" || b.RefreshToken == "" || b.TokenType != "Bearer" || b.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" {
			t.Fatalf("exchange (%s) = %s", aud, r.body)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Fatal("exchange answer without no-store")
		}
		wantStatus(t, exchange(t, env, "kakao", tok), 400) // the same id_token twice
		var claims map[string]any
		_ = json.Unmarshal(mustB64(t, strings.Split(b.AccessToken, ".")[1]), &claims)
		if claims["idp"] != "kakao" {
			t.Fatalf("idp = %v", claims["idp"])
		}
	}
	for name, tok := range map[string]string{
		"other audience": kakao.MintIDToken(map[string]any{"aud": "someone-else"}),
		"other issuer":   kakao.MintIDToken(map[string]any{"iss": "https://evil.example"}),
		"expired":        kakao.MintIDToken(map[string]any{"exp": env.Clock.Now().Add(-time.Minute).Unix()}),
		"no sub":         kakao.MintIDToken(map[string]any{"sub": ""}),
		"garbage":        "a.b.c",
	} {
		r := exchange(t, env, "kakao", tok)
		if r.StatusCode != 400 || r.json(t).Error != "invalid_grant" {
			t.Fatalf("%s: %d %s, want 400 invalid_grant", name, r.StatusCode, r.body)
		}
	}
	// Every id_token attack of the callback, applied to the exchange; the
	// app sends a nonce, so nonce faults count too.
	for _, fault := range providertest.IDTokenFaults {
		if fault == fakeidp.SubMismatch { // a userinfo mismatch: the exchange has no userinfo
			continue
		}
		kakao.SetFaults(fakeidp.Faults{IDToken: fault})
		tok := kakao.MintIDToken(map[string]any{"nonce": "app-nonce"})
		kakao.SetFaults(fakeidp.Faults{})
		r := exchangeWith(t, env, "kakao", tok, "app-nonce")
		if r.StatusCode != 400 || r.json(t).Error != "invalid_grant" {
			t.Fatalf("%s: %d %s, want 400 invalid_grant", fault, r.StatusCode, r.body)
		}
	}
	// The honest token with the app's nonce works.
	wantStatus(t, exchangeWith(t, env, "kakao", kakao.MintIDToken(map[string]any{"nonce": "app-nonce", "sub": "8080"}), "app-nonce"), 200)
	for _, p := range []string{"naver", "nope"} {
		r := exchange(t, env, p, kakao.MintIDToken(nil))
		if r.StatusCode != 400 || r.json(t).Error != "invalid_request" {
			t.Fatalf("provider %s: %d %s, want 400 invalid_request", p, r.StatusCode, r.body)
		}
	}
	// signup.mode form: a new identity must sign up in the browser first.
	formEnv := brokertest.New(t, brokertest.Options{Providers: []string{"google"}})
	r := exchange(t, formEnv, "google", formEnv.Emulators["google"].MintIDToken(nil))
	if r.StatusCode != 403 || r.json(t).Error != "signup_required" {
		t.Fatalf("form mode: %d %s, want 403 signup_required", r.StatusCode, r.body)
	}
	if u := countRows(t, formEnv, "users"); u != 0 {
		t.Fatalf("users = %d, want 0", u)
	}
}
