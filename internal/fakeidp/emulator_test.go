package fakeidp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"golang.org/x/oauth2"
)

const (
	testClientID = "client-abc123"
	testSecret   = "s3cr3t-value"
	cbURL        = "http://127.0.0.1:8080/auth/callback/test"
	cbURL2       = "http://127.0.0.1:8080/auth/callback/other"
)

// ---- helpers ----

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func start(t *testing.T, opts Options) *Emulator {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = testClientID
	}
	if opts.RedirectURIs == nil {
		opts.RedirectURIs = []string{cbURL, cbURL2}
	}
	e, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

func config(e *Emulator, scopes ...string) *oauth2.Config {
	ep := e.Endpoints()
	return &oauth2.Config{
		ClientID:     e.opts.ClientID,
		ClientSecret: e.opts.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: ep.AuthURL, TokenURL: ep.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL:  cbURL,
		Scopes:       scopes,
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // the gzip bombs inflate 64 MiB, slow under -race on a busy machine
	t.Cleanup(cancel)
	return ctx
}

// approve runs Approve and checks that it lands on redirect with the state;
// it returns the code.
func approve(t *testing.T, e *Emulator, authURL, redirect, state string) string {
	t.Helper()
	loc, err := e.Approve(ctxT(t), authURL)
	if err != nil {
		t.Fatalf("Approve: %v", err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect {
		t.Fatalf("redirected to %q, want %q", got, redirect)
	}
	q := loc.Query()
	if q.Get("error") != "" {
		t.Fatalf("redirected with error %q (%q)", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != state {
		t.Fatalf("state = %q, want %q", q.Get("state"), state)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %s", loc)
	}
	return q.Get("code")
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(r.body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %.300s", err, r.body)
	}
	return m
}

func newRequest(t *testing.T, method, target string, form url.Values, header map[string]string) *http.Request {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctxT(t), method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req
}

func send(t *testing.T, method, target string, form url.Values, header map[string]string) response {
	t.Helper()
	req := newRequest(t, method, target, form, header)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// retrieveError asserts err is an *oauth2.RetrieveError with status and the
// exact JSON body want.
func retrieveError(t *testing.T, err error, status int, want map[string]any) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v (%T), want *oauth2.RetrieveError", err, err)
	}
	if re.Response.StatusCode != status {
		t.Errorf("HTTP status = %d, want %d", re.Response.StatusCode, status)
	}
	var got map[string]any
	if err := json.Unmarshal(re.Body, &got); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, re.Body)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("error body = %s, want %v", re.Body, want)
	}
}

func jwtParts(t *testing.T, tok string) (hdr, claims map[string]any, sig []byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	dec := func(s string, v any) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("base64: %v", err)
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(v); err != nil {
			t.Fatalf("json: %v", err)
		}
	}
	dec(parts[0], &hdr)
	dec(parts[1], &claims)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("signature base64: %v", err)
	}
	return hdr, claims, sig
}

func fetchJWKS(t *testing.T, e *Emulator) jwk.Set {
	t.Helper()
	r := send(t, "GET", e.Endpoints().JWKSURL, nil, nil)
	if r.status != 200 {
		t.Fatalf("JWKS status %d", r.status)
	}
	set, err := jwk.Parse(r.body)
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	return set
}

// protectedHeaders returns the protected header of a compact JWS with one
// signature.
func protectedHeaders(t *testing.T, raw string) jws.Headers {
	t.Helper()
	msg, err := jws.Parse([]byte(raw))
	if err != nil || len(msg.Signatures()) != 1 {
		t.Fatalf("not a JWS with one signature: %v", err)
	}
	return msg.Signatures()[0].ProtectedHeaders()
}

func verifier(t *testing.T, e *Emulator, cfg *oidc.Config) *oidc.IDTokenVerifier {
	t.Helper()
	p, err := oidc.NewProvider(ctxT(t), e.URL())
	if err != nil {
		t.Fatalf("oidc discovery: %v", err)
	}
	return p.Verifier(cfg)
}

// ---- Kakao ----

func kakaoUser() User {
	return User{Subject: "9007199254740993", Email: "ryan@kakao.example", EmailVerified: true, Nickname: "라이언", Name: "김라이언", Picture: "https://k.kakaocdn.example/ryan.jpg"}
}

type kakaoLogin struct {
	cfg      *oauth2.Config
	code     string
	verifier string
	nonce    string
}

func kakaoApprove(t *testing.T, e *Emulator, scope string) kakaoLogin {
	t.Helper()
	l := kakaoLogin{cfg: config(e), verifier: oauth2.GenerateVerifier(), nonce: "nonce-" + randToken(8)}
	state := "st-" + randToken(8)
	authURL := l.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(l.verifier),
		oauth2.SetAuthURLParam("scope", scope), oauth2.SetAuthURLParam("nonce", l.nonce))
	l.code = approve(t, e, authURL, cbURL, state)
	return l
}

func TestKakaoHonestFlow(t *testing.T) {
	e := start(t, Options{Kind: Kakao, ClientSecret: testSecret, User: kakaoUser()})
	ctx := ctxT(t)
	l := kakaoApprove(t, e, "openid,profile_nickname,profile_image,account_email")

	tok, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.TokenType != "bearer" {
		t.Errorf("token_type = %q, want bearer", tok.TokenType)
	}
	if got := tok.Extra("expires_in"); got != float64(43199) {
		t.Errorf("expires_in = %v, want 43199", got)
	}
	if got := tok.Extra("refresh_token_expires_in"); got != float64(5183999) {
		t.Errorf("refresh_token_expires_in = %v, want 5183999", got)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh_token")
	}
	if got := tok.Extra("scope"); got != "openid profile_nickname profile_image account_email" {
		t.Errorf("scope = %v", got)
	}

	// The token request carried everything Kakao needs, in the form body.
	calls := e.Calls()
	last := calls[len(calls)-1]
	if last.Path != "/oauth/token" || last.Form.Get("client_secret") != testSecret || last.Form.Get("code_verifier") != l.verifier || last.Form.Get("redirect_uri") != cbURL {
		t.Errorf("recorded token call = %+v", last)
	}

	// id_token: RS256, verified by go-oidc against discovery + JWKS.
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no id_token although openid was in scope")
	}
	idt, err := verifier(t, e, &oidc.Config{ClientID: testClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc Verify: %v", err)
	}
	if idt.Issuer != e.URL() || idt.Subject != "9007199254740993" || idt.Nonce != l.nonce {
		t.Errorf("iss/sub/nonce = %q/%q/%q", idt.Issuer, idt.Subject, idt.Nonce)
	}
	hdr, claims, _ := jwtParts(t, raw)
	if hdr["alg"] != "RS256" || hdr["kid"] == nil {
		t.Errorf("header = %v", hdr)
	}
	if _, ok := claims["email_verified"]; ok {
		t.Error("Kakao id_token has email_verified; the real one never does")
	}
	for _, c := range []string{"auth_time", "nickname", "picture", "email"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("id_token lacks %q: %v", c, claims)
		}
	}
	if claims["sub"] != "9007199254740993" {
		t.Errorf("sub claim = %#v, want the string", claims["sub"])
	}

	// /v2/user/me: the id is a JSON number written verbatim (> 2^53).
	for _, method := range []string{"GET", "POST"} {
		r := send(t, method, e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken))
		if r.status != 200 {
			t.Fatalf("%s /v2/user/me = %d %s", method, r.status, r.body)
		}
		if !bytes.Contains(r.body, []byte(`"id":9007199254740993`)) {
			t.Errorf("body does not carry the id verbatim: %s", r.body)
		}
		m := r.json(t)
		acct := m["kakao_account"].(map[string]any)
		profile := acct["profile"].(map[string]any)
		if profile["nickname"] != "라이언" || acct["email"] != "ryan@kakao.example" || acct["is_email_valid"] != true ||
			acct["is_email_verified"] != true || acct["email_needs_agreement"] != false || acct["profile_nickname_needs_agreement"] != false {
			t.Errorf("kakao_account = %v", acct)
		}
		if _, err := time.Parse(time.RFC3339, m["connected_at"].(string)); err != nil {
			t.Errorf("connected_at: %v", err)
		}
		if props := m["properties"].(map[string]any); props["nickname"] != "라이언" {
			t.Errorf("properties = %v", props)
		}
	}

	// The OIDC userinfo endpoint.
	r := send(t, "GET", e.URL()+"/v1/oidc/userinfo", nil, bearer(tok.AccessToken))
	if m := r.json(t); r.status != 200 || m["sub"] != "9007199254740993" || m["email"] != "ryan@kakao.example" {
		t.Errorf("/v1/oidc/userinfo = %d %s", r.status, r.body)
	}
}

func TestKakaoSpaceSeparatedScopeAccepted(t *testing.T) {
	e := start(t, Options{Kind: Kakao})
	cfg := config(e, "profile_nickname", "account_email") // x/oauth2 joins with spaces
	code := approve(t, e, cfg.AuthCodeURL("s1"), cbURL, "s1")
	tok, err := cfg.Exchange(ctxT(t), code)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Extra("scope"); got != "profile_nickname account_email" {
		t.Errorf("scope = %v", got)
	}
	if tok.Extra("id_token") != nil {
		t.Error("id_token issued without openid in scope")
	}
}

func TestKakaoUnknownScopeIsKOE205(t *testing.T) {
	e := start(t, Options{Kind: Kakao})
	_, err := e.Approve(ctxT(t), config(e).AuthCodeURL("s", oauth2.SetAuthURLParam("scope", "profile_nickname,email")))
	var ae *AuthorizeError
	if !errors.As(err, &ae) || ae.Code != "KOE205" || ae.Status != 400 {
		t.Fatalf("err = %v, want AuthorizeError KOE205", err)
	}
}

func TestKakaoReplayedCode(t *testing.T) {
	e := start(t, Options{Kind: Kakao, ClientSecret: testSecret, User: kakaoUser()})
	l := kakaoApprove(t, e, "openid,profile_nickname")
	if _, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier)); err != nil {
		t.Fatalf("first Exchange: %v", err)
	}
	_, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier))
	retrieveError(t, err, 400, map[string]any{
		"error": "invalid_grant", "error_description": "authorization code not found for code=" + l.code, "error_code": "KOE320",
	})
}

func TestKakaoExpiredCode(t *testing.T) {
	clock := newClock()
	e := start(t, Options{Kind: Kakao, Now: clock.Now})
	l := kakaoApprove(t, e, "profile_nickname")
	clock.Advance(10*time.Minute + time.Second)
	_, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier))
	retrieveError(t, err, 400, map[string]any{
		"error": "invalid_grant", "error_description": "authorization code not found for code=" + l.code, "error_code": "KOE320",
	})
}

func TestKakaoAuthorizeRefusals(t *testing.T) {
	e := start(t, Options{Kind: Kakao})
	cases := []struct {
		name     string
		clientID string
		redirect string
		wantCode string
	}{
		{"unregistered redirect_uri", testClientID, "http://evil.example/cb", "KOE006"},
		{"redirect_uri differs by a trailing slash", testClientID, cbURL + "/", "KOE006"},
		{"missing redirect_uri", testClientID, "", "KOE006"},
		{"unknown client_id", "nope", cbURL, "KOE101"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(e)
			cfg.ClientID, cfg.RedirectURL = tc.clientID, tc.redirect
			authURL := cfg.AuthCodeURL("s")
			_, err := e.Approve(ctxT(t), authURL)
			var ae *AuthorizeError
			if !errors.As(err, &ae) || ae.Code != tc.wantCode || ae.Status != 400 {
				t.Fatalf("err = %v, want an AuthorizeError %s", err, tc.wantCode)
			}
			r := send(t, "GET", authURL, nil, nil)
			if r.status != 400 || r.header.Get("Location") != "" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Errorf("raw authorize = %d, Location %q, %s", r.status, r.header.Get("Location"), r.header.Get("Content-Type"))
			}
		})
	}
}

func TestKakaoRedirectURIMismatchAtToken(t *testing.T) {
	e := start(t, Options{Kind: Kakao})
	l := kakaoApprove(t, e, "profile_nickname")
	other := *l.cfg
	other.RedirectURL = cbURL2 // registered, but not the one used at authorize
	_, err := other.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier))
	retrieveError(t, err, 400, map[string]any{"error": "invalid_grant", "error_description": "Redirect URI mismatch.", "error_code": "KOE303"})
}

func TestKakaoPKCE(t *testing.T) {
	e := start(t, Options{Kind: Kakao})
	want := map[string]any{"error": "invalid_grant", "error_description": "PKCE verification failed: invalid code_verifier", "error_code": "KOE320"}
	t.Run("wrong verifier", func(t *testing.T) {
		l := kakaoApprove(t, e, "profile_nickname")
		_, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		retrieveError(t, err, 400, want)
	})
	t.Run("missing verifier", func(t *testing.T) {
		l := kakaoApprove(t, e, "profile_nickname")
		_, err := l.cfg.Exchange(ctxT(t), l.code)
		retrieveError(t, err, 400, want)
	})
	t.Run("verifier without a challenge", func(t *testing.T) {
		cfg := config(e, "profile_nickname")
		code := approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
		_, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		retrieveError(t, err, 400, want)
	})
	t.Run("plain challenge refused at authorize", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		loc, err := e.Approve(ctxT(t), config(e).AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge", v), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
		if err != nil {
			t.Fatal(err)
		}
		if q := loc.Query(); q.Get("error") != "invalid_request" || q.Get("code") != "" || q.Get("state") != "s" {
			t.Errorf("redirect = %s, want error=invalid_request", loc)
		}
	})
}

func TestKakaoClientSecret(t *testing.T) {
	e := start(t, Options{Kind: Kakao, ClientSecret: testSecret})
	want := map[string]any{"error": "invalid_client", "error_description": "Bad client credentials", "error_code": "KOE010"}
	for _, secret := range []string{"wrong", ""} {
		l := kakaoApprove(t, e, "profile_nickname")
		l.cfg.ClientSecret = secret
		_, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier))
		retrieveError(t, err, 401, want)
	}
	// A client authentication failure does not burn the code.
	l := kakaoApprove(t, e, "profile_nickname")
	l.cfg.ClientSecret = "wrong"
	if _, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier)); err == nil {
		t.Fatal("wrong secret accepted")
	}
	l.cfg.ClientSecret = testSecret
	if _, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier)); err != nil {
		t.Fatalf("right secret after a wrong one: %v", err)
	}

	// Without a configured secret none is needed.
	e2 := start(t, Options{Kind: Kakao})
	l2 := kakaoApprove(t, e2, "profile_nickname")
	if _, err := l2.cfg.Exchange(ctxT(t), l2.code, oauth2.VerifierOption(l2.verifier)); err != nil {
		t.Fatalf("Exchange without a secret: %v", err)
	}
}

func TestKakaoWithoutEmailScope(t *testing.T) {
	e := start(t, Options{Kind: Kakao, User: kakaoUser()})
	l := kakaoApprove(t, e, "openid,profile_nickname")
	tok, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	r := send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken))
	if bytes.Contains(r.body, []byte("ryan@kakao.example")) {
		t.Errorf("email leaked without account_email: %s", r.body)
	}
	acct := r.json(t)["kakao_account"].(map[string]any)
	for _, k := range []string{"email", "is_email_valid", "is_email_verified", "email_needs_agreement"} {
		if _, ok := acct[k]; ok {
			t.Errorf("kakao_account has %q without account_email: %v", k, acct)
		}
	}
	if acct["profile_image_needs_agreement"] != true {
		t.Errorf("profile_image_needs_agreement = %v, want true", acct["profile_image_needs_agreement"])
	}
	_, claims, _ := jwtParts(t, tok.Extra("id_token").(string))
	if _, ok := claims["email"]; ok {
		t.Errorf("id_token has email without account_email: %v", claims)
	}
}

func TestKakaoDeclinedEmail(t *testing.T) {
	u := kakaoUser()
	u.Email = ""
	e := start(t, Options{Kind: Kakao, User: u})
	l := kakaoApprove(t, e, "profile_nickname,account_email")
	tok, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	acct := send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken)).json(t)["kakao_account"].(map[string]any)
	if _, ok := acct["email"]; ok || acct["email_needs_agreement"] != true {
		t.Errorf("kakao_account = %v, want no email and email_needs_agreement=true", acct)
	}
}

func TestKakaoBadAccessToken(t *testing.T) {
	e := start(t, Options{Kind: Kakao})
	for _, h := range []map[string]string{bearer("not-a-token"), nil} {
		r := send(t, "GET", e.Endpoints().UserinfoURL, nil, h)
		if r.status != 401 || string(r.body) != `{"code":-401,"msg":"this access token does not exist"}` {
			t.Errorf("userinfo = %d %s", r.status, r.body)
		}
	}
}

func TestKakaoUnlink(t *testing.T) {
	e := start(t, Options{Kind: Kakao, AdminKey: "admin-key-1", User: kakaoUser()})
	l := kakaoApprove(t, e, "profile_nickname")
	tok, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"target_id_type": {"user_id"}, "target_id": {"9007199254740993"}}
	unlink := e.Endpoints().RevokeURL

	r := send(t, "POST", unlink, form, map[string]string{"Authorization": "KakaoAK wrong-key"})
	if m := r.json(t); r.status != 401 || m["code"] != json.Number("-401") {
		t.Errorf("wrong admin key: %d %s", r.status, r.body)
	}
	if st := send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken)).status; st != 200 {
		t.Fatalf("token stopped working after a refused unlink: %d", st)
	}

	r = send(t, "POST", unlink, form, map[string]string{"Authorization": "KakaoAK admin-key-1"})
	if r.status != 200 || string(r.body) != `{"id":9007199254740993}` {
		t.Errorf("unlink = %d %s", r.status, r.body)
	}
	if st := send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken)).status; st != 401 {
		t.Errorf("userinfo after unlink = %d, want 401", st)
	}
	r = send(t, "POST", unlink, form, map[string]string{"Authorization": "KakaoAK admin-key-1"})
	if m := r.json(t); r.status != 400 || m["code"] != json.Number("-101") {
		t.Errorf("second unlink = %d %s, want 400 code -101", r.status, r.body)
	}

	// With the user's own access token.
	l = kakaoApprove(t, e, "profile_nickname")
	tok, err = l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	r = send(t, "POST", unlink, url.Values{}, bearer(tok.AccessToken))
	if r.status != 200 || string(r.body) != `{"id":9007199254740993}` {
		t.Errorf("bearer unlink = %d %s", r.status, r.body)
	}
}

func TestKakaoRefresh(t *testing.T) {
	clock := newClock()
	e := start(t, Options{Kind: Kakao, Now: clock.Now})
	l := kakaoApprove(t, e, "profile_nickname")
	tok, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt string) response {
		return send(t, "POST", e.Endpoints().TokenURL, url.Values{"grant_type": {"refresh_token"}, "client_id": {testClientID}, "refresh_token": {rt}}, nil)
	}
	m := refresh(tok.RefreshToken).json(t)
	if m["access_token"] == nil || m["refresh_token"] != nil {
		t.Errorf("early refresh = %v, want a new access token and no new refresh token", m)
	}
	clock.Advance(31 * 24 * time.Hour) // less than a month left
	m = refresh(tok.RefreshToken).json(t)
	if m["refresh_token"] == nil || m["refresh_token_expires_in"] == nil {
		t.Fatalf("late refresh = %v, want a new refresh token", m)
	}
	r := refresh(tok.RefreshToken)
	if want := `{"error":"invalid_grant","error_description":"expired_or_invalid_refresh_token","error_code":"KOE322"}`; r.status != 400 || !jsonEqual(r.body, want) {
		t.Errorf("old refresh token = %d %s", r.status, r.body)
	}
}

func jsonEqual(a []byte, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

func TestKakaoDiscovery(t *testing.T) {
	e := start(t, Options{Kind: Kakao})
	m := send(t, "GET", e.URL()+"/.well-known/openid-configuration", nil, nil).json(t)
	want := map[string]any{
		"issuer":                 e.URL(),
		"authorization_endpoint": e.URL() + "/oauth/authorize",
		"token_endpoint":         e.URL() + "/oauth/token",
		"userinfo_endpoint":      e.URL() + "/v1/oidc/userinfo",
		"jwks_uri":               e.URL() + "/.well-known/jwks.json",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if fmt.Sprint(m["code_challenge_methods_supported"]) != "[S256]" || fmt.Sprint(m["id_token_signing_alg_values_supported"]) != "[RS256]" {
		t.Errorf("discovery = %v", m)
	}
	ep := e.Endpoints()
	if ep != (Endpoints{AuthURL: e.URL() + "/oauth/authorize", TokenURL: e.URL() + "/oauth/token", UserinfoURL: e.URL() + "/v2/user/me",
		Issuer: e.URL(), JWKSURL: e.URL() + "/.well-known/jwks.json", RevokeURL: e.URL() + "/v1/user/unlink"}) {
		t.Errorf("Endpoints = %+v", ep)
	}
}

// ---- Naver ----

func naverUser() User {
	return User{Subject: "nv-AbC123xyz", Email: "minji@naver.example", Nickname: "민지", Name: "이민지", Picture: "https://phinf.example/p.png"}
}

func TestNaverFlow(t *testing.T) {
	e := start(t, Options{Kind: Naver, ClientSecret: testSecret, User: naverUser()})
	cfg := config(e)
	// Naver ignores PKCE: a challenge at authorize, no verifier at the token endpoint.
	authURL := cfg.AuthCodeURL("naver-state", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	code := approve(t, e, authURL, cbURL, "naver-state")

	tok, err := cfg.Exchange(ctxT(t), code, oauth2.SetAuthURLParam("state", "naver-state"))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if d := time.Until(tok.Expiry); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expiry in %v, want ~1h (expires_in is the string \"3600\")", d)
	}
	if tok.RefreshToken == "" || tok.TokenType != "bearer" {
		t.Errorf("token = %+v", tok)
	}

	// The raw body has expires_in as a string.
	code2 := approve(t, e, cfg.AuthCodeURL("s2"), cbURL, "s2")
	r := send(t, "POST", e.Endpoints().TokenURL, url.Values{"grant_type": {"authorization_code"}, "client_id": {testClientID}, "client_secret": {testSecret}, "code": {code2}, "state": {"s2"}}, nil)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"expires_in":"3600"`)) {
		t.Errorf("raw token body = %d %s", r.status, r.body)
	}

	r = send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken))
	want := `{"resultcode":"00","message":"success","response":{"id":"nv-AbC123xyz","nickname":"민지","name":"이민지","email":"minji@naver.example","profile_image":"https://phinf.example/p.png"}}`
	if r.status != 200 || !jsonEqual(r.body, want) {
		t.Errorf("/v1/nid/me = %d %s", r.status, r.body)
	}

	// A replayed code: HTTP 200 with an error body.
	_, err = cfg.Exchange(ctxT(t), code, oauth2.SetAuthURLParam("state", "naver-state"))
	retrieveError(t, err, 200, map[string]any{"error": "invalid_request", "error_description": "no valid data in session"})

	if ep := e.Endpoints(); ep.Issuer != "" || ep.JWKSURL != "" || ep.RevokeURL != e.URL()+"/oauth2.0/revoke" || ep.UserinfoURL != e.URL()+"/v1/nid/me" {
		t.Errorf("Endpoints = %+v", ep)
	}
	if st := send(t, "GET", e.URL()+"/.well-known/openid-configuration", nil, nil).status; st != 404 {
		t.Errorf("Naver discovery = %d, want 404", st)
	}
}

func TestNaverState(t *testing.T) {
	e := start(t, Options{Kind: Naver, ClientSecret: testSecret})
	cfg := config(e)
	code := approve(t, e, cfg.AuthCodeURL("right"), cbURL, "right")
	_, err := cfg.Exchange(ctxT(t), code, oauth2.SetAuthURLParam("state", "wrong"))
	retrieveError(t, err, 200, map[string]any{"error": "invalid_request", "error_description": "no valid data in session"})

	code = approve(t, e, cfg.AuthCodeURL("right"), cbURL, "right")
	_, err = cfg.Exchange(ctxT(t), code) // no state at all
	retrieveError(t, err, 200, map[string]any{"error": "invalid_request", "error_description": "no valid data in session"})

	_, err = e.Approve(ctxT(t), cfg.AuthCodeURL(""))
	var ae *AuthorizeError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "invalid_request" {
		t.Errorf("authorize without state: %v, want an error page", err)
	}
}

func TestNaverClientSecret(t *testing.T) {
	e := start(t, Options{Kind: Naver, ClientSecret: testSecret})
	cfg := config(e)
	code := approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
	bad := *cfg
	bad.ClientSecret = "nope"
	_, err := bad.Exchange(ctxT(t), code, oauth2.SetAuthURLParam("state", "s"))
	retrieveError(t, err, 200, map[string]any{"error": "invalid_request", "error_description": "wrong client id / client secret pair"})

	// Naver also takes every parameter in the query string of a GET.
	q := url.Values{"grant_type": {"authorization_code"}, "client_id": {testClientID}, "client_secret": {testSecret}, "code": {code}, "state": {"s"}}
	r := send(t, "GET", e.Endpoints().TokenURL+"?"+q.Encode(), nil, nil)
	if m := r.json(t); r.status != 200 || m["access_token"] == nil {
		t.Errorf("GET token with query = %d %s", r.status, r.body)
	}
}

func TestNaverRevoke(t *testing.T) {
	e := start(t, Options{Kind: Naver, ClientSecret: testSecret})
	cfg := config(e)
	code := approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
	tok, err := cfg.Exchange(ctxT(t), code, oauth2.SetAuthURLParam("state", "s"))
	if err != nil {
		t.Fatal(err)
	}
	r := send(t, "POST", e.Endpoints().RevokeURL, url.Values{"client_id": {testClientID}, "client_secret": {testSecret}, "token": {tok.AccessToken}, "token_type_hint": {"access_token"}}, nil)
	if r.status != 200 || len(r.body) != 0 {
		t.Errorf("revoke = %d %q, want 200 and no body", r.status, r.body)
	}
	r = send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken))
	if r.status != 401 || !jsonEqual(r.body, `{"resultcode":"024","message":"Authentication failed"}`) {
		t.Errorf("userinfo after revoke = %d %s", r.status, r.body)
	}
	r = send(t, "POST", e.Endpoints().TokenURL, url.Values{"grant_type": {"refresh_token"}, "client_id": {testClientID}, "client_secret": {testSecret}, "refresh_token": {tok.RefreshToken}}, nil)
	if m := r.json(t); r.status != 200 || m["error"] == nil {
		t.Errorf("refresh after revoke = %d %s, want an error", r.status, r.body)
	}
}

// ---- Google ----

func googleUser() User {
	return User{Subject: "108123456789012345678", Email: "alice@gmail.example", EmailVerified: true, Nickname: "alice", Name: "Alice Example", Picture: "https://lh3.example/a.png"}
}

type googleLogin struct {
	cfg                   *oauth2.Config
	code, verifier, nonce string
	provider              *oidc.Provider
}

func googleApprove(t *testing.T, e *Emulator, opts ...oauth2.AuthCodeOption) googleLogin {
	t.Helper()
	p, err := oidc.NewProvider(ctxT(t), e.URL())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	l := googleLogin{provider: p, verifier: oauth2.GenerateVerifier(), nonce: "n-" + randToken(8)}
	l.cfg = &oauth2.Config{ClientID: testClientID, ClientSecret: testSecret, Endpoint: ep, RedirectURL: cbURL, Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	opts = append(opts, oauth2.S256ChallengeOption(l.verifier), oidc.Nonce(l.nonce))
	l.code = approve(t, e, l.cfg.AuthCodeURL("g-state", opts...), cbURL, "g-state")
	return l
}

func TestGoogleFlow(t *testing.T) {
	e := start(t, Options{Kind: Google, ClientSecret: testSecret, User: googleUser()})
	ctx := ctxT(t)
	l := googleApprove(t, e, oauth2.AccessTypeOffline)
	if !strings.HasPrefix(l.code, "4/0") {
		t.Errorf("code %q does not look like a Google code", l.code)
	}
	if got := l.provider.Endpoint().AuthURL; got != e.URL()+"/o/oauth2/v2/auth" {
		t.Errorf("authorization_endpoint = %q", got)
	}
	tok, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh_token with access_type=offline")
	}
	if got := tok.Extra("scope"); got != "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile" {
		t.Errorf("scope = %v", got)
	}
	idt, err := l.provider.Verifier(&oidc.Config{ClientID: testClientID}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if idt.Nonce != l.nonce || idt.Subject != "108123456789012345678" {
		t.Errorf("nonce/sub = %q/%q", idt.Nonce, idt.Subject)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Azp           string `json:"azp"`
		Name          string `json:"name"`
		GivenName     string `json:"given_name"`
		Picture       string `json:"picture"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Email != "alice@gmail.example" || !claims.EmailVerified || claims.Azp != testClientID || claims.GivenName != "Alice" || claims.Name != "Alice Example" {
		t.Errorf("claims = %+v", claims)
	}

	ui, err := l.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("UserInfo: %v", err)
	}
	if ui.Subject != "108123456789012345678" || ui.Email != "alice@gmail.example" || !ui.EmailVerified {
		t.Errorf("userinfo = %+v", ui)
	}

	// Without access_type=offline there is no refresh token.
	l2 := googleApprove(t, e)
	tok2, err := l2.cfg.Exchange(ctx, l2.code, oauth2.VerifierOption(l2.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok2.RefreshToken != "" {
		t.Error("refresh_token without access_type=offline")
	}

	m := send(t, "GET", e.URL()+"/.well-known/openid-configuration", nil, nil).json(t)
	if fmt.Sprint(m["code_challenge_methods_supported"]) != "[plain S256]" || m["revocation_endpoint"] != e.URL()+"/revoke" || m["jwks_uri"] != e.URL()+"/oauth2/v3/certs" {
		t.Errorf("discovery = %v", m)
	}
}

func TestGoogleWithoutEmailScope(t *testing.T) {
	e := start(t, Options{Kind: Google, User: googleUser()})
	cfg := config(e, "openid", "profile")
	code := approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
	tok, err := cfg.Exchange(ctxT(t), code)
	if err != nil {
		t.Fatal(err)
	}
	_, claims, _ := jwtParts(t, tok.Extra("id_token").(string))
	if _, ok := claims["email"]; ok {
		t.Errorf("email without the email scope: %v", claims)
	}
	if _, ok := claims["email_verified"]; ok {
		t.Errorf("email_verified without the email scope: %v", claims)
	}
	if claims["name"] != "Alice Example" {
		t.Errorf("name = %v", claims["name"])
	}
}

func TestGoogleClientAuthentication(t *testing.T) {
	e := start(t, Options{Kind: Google, ClientSecret: testSecret, User: googleUser()})
	ctx := ctxT(t)

	l := googleApprove(t, e)
	l.cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	_, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
	retrieveError(t, err, 401, map[string]any{"error": "invalid_client", "error_description": "The OAuth client was not found."})

	l.cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	l.cfg.ClientSecret = "wrong"
	_, err = l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
	retrieveError(t, err, 401, map[string]any{"error": "invalid_client", "error_description": "Unauthorized"})

	// Auto-detection tries the header first, then retries in the body: two
	// token calls for one login.
	l = googleApprove(t, e)
	before := e.CallCount("/token")
	l.cfg.Endpoint.AuthStyle = oauth2.AuthStyleAutoDetect
	if _, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier)); err != nil {
		t.Fatalf("auto-detected exchange: %v", err)
	}
	if n := e.CallCount("/token") - before; n != 2 {
		t.Errorf("token calls = %d, want 2", n)
	}
}

func TestGoogleTokenErrors(t *testing.T) {
	e := start(t, Options{Kind: Google, ClientSecret: testSecret})
	ctx := ctxT(t)
	t.Run("replayed code", func(t *testing.T) {
		l := googleApprove(t, e)
		if _, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier)); err != nil {
			t.Fatal(err)
		}
		_, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
		retrieveError(t, err, 400, map[string]any{"error": "invalid_grant", "error_description": "Bad Request"})
	})
	t.Run("redirect_uri mismatch", func(t *testing.T) {
		l := googleApprove(t, e)
		l.cfg.RedirectURL = cbURL2
		_, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
		retrieveError(t, err, 400, map[string]any{"error": "redirect_uri_mismatch", "error_description": "Bad Request"})
	})
	t.Run("bad verifier", func(t *testing.T) {
		l := googleApprove(t, e)
		_, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		retrieveError(t, err, 400, map[string]any{"error": "invalid_grant", "error_description": "Invalid code verifier."})
	})
	t.Run("missing verifier", func(t *testing.T) {
		l := googleApprove(t, e)
		_, err := l.cfg.Exchange(ctx, l.code)
		retrieveError(t, err, 400, map[string]any{"error": "invalid_grant", "error_description": "Missing code verifier."})
	})
	t.Run("authorize refusals", func(t *testing.T) {
		cfg := config(e, "openid")
		cfg.RedirectURL = "http://127.0.0.1:8080/auth/callback/test?x=1"
		_, err := e.Approve(ctx, cfg.AuthCodeURL("s"))
		var ae *AuthorizeError
		if !errors.As(err, &ae) || ae.Code != "redirect_uri_mismatch" || ae.Status != 400 {
			t.Errorf("unregistered redirect_uri: %v", err)
		}
		_, err = e.Approve(ctx, config(e).AuthCodeURL("s")) // no scope
		if !errors.As(err, &ae) || ae.Code != "invalid_request" || !strings.Contains(ae.Description, "scope") {
			t.Errorf("missing scope: %v", err)
		}
	})
}

func TestGoogleRevoke(t *testing.T) {
	e := start(t, Options{Kind: Google})
	cfg := config(e, "openid", "email")
	code := approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
	tok, err := cfg.Exchange(ctxT(t), code)
	if err != nil {
		t.Fatal(err)
	}
	r := send(t, "POST", e.Endpoints().RevokeURL, url.Values{"token": {tok.AccessToken}}, nil)
	if r.status != 200 || string(r.body) != "{}" {
		t.Errorf("revoke = %d %s", r.status, r.body)
	}
	r = send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken))
	if m := r.json(t); r.status != 401 || m["error"] != "invalid_token" {
		t.Errorf("userinfo after revoke = %d %s", r.status, r.body)
	}
	r = send(t, "POST", e.Endpoints().RevokeURL, url.Values{"token": {tok.AccessToken}}, nil)
	if m := r.json(t); r.status != 400 || m["error"] != "invalid_token" {
		t.Errorf("second revoke = %d %s", r.status, r.body)
	}
}

// ---- generic OIDC ----

func TestOIDCFlow(t *testing.T) {
	e := start(t, Options{Kind: OIDC, ClientSecret: testSecret})
	ctx := ctxT(t)
	ep := e.Endpoints()
	if ep.AuthURL != e.URL()+"/authorize" || ep.TokenURL != e.URL()+"/token" || ep.UserinfoURL != e.URL()+"/userinfo" || ep.JWKSURL != e.URL()+"/jwks" || ep.RevokeURL != e.URL()+"/revoke" || ep.Issuer != e.URL() {
		t.Errorf("Endpoints = %+v", ep)
	}
	m := send(t, "GET", e.URL()+"/.well-known/openid-configuration", nil, nil).json(t)
	if fmt.Sprint(m["code_challenge_methods_supported"]) != "[S256]" || m["jwks_uri"] != ep.JWKSURL {
		t.Errorf("discovery = %v", m)
	}

	cfg := config(e, "openid", "email", "profile")
	v := oauth2.GenerateVerifier()
	code := approve(t, e, cfg.AuthCodeURL("o", oauth2.S256ChallengeOption(v), oidc.Nonce("n1")), cbURL, "o")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	p, err := oidc.NewProvider(ctx, e.URL())
	if err != nil {
		t.Fatal(err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: testClientID}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if idt.Nonce != "n1" || idt.VerifyAccessToken(tok.AccessToken) != nil {
		t.Errorf("nonce %q / at_hash", idt.Nonce)
	}
	ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != idt.Subject || ui.Email != "bob@oidc.example" {
		t.Errorf("UserInfo = %+v, %v", ui, err)
	}

	// The refresh token rotates: the old one stops working.
	refresh := func(rt string) response {
		return send(t, "POST", ep.TokenURL, url.Values{"grant_type": {"refresh_token"}, "client_id": {testClientID}, "client_secret": {testSecret}, "refresh_token": {rt}}, nil)
	}
	r := refresh(tok.RefreshToken)
	if m := r.json(t); r.status != 200 || m["refresh_token"] == nil || m["refresh_token"] == tok.RefreshToken {
		t.Fatalf("refresh = %d %s", r.status, r.body)
	}
	if r := refresh(tok.RefreshToken); r.status != 400 || r.json(t)["error"] != "invalid_grant" {
		t.Errorf("old refresh token = %d %s", r.status, r.body)
	}

	// plain PKCE is not offered: an error redirect.
	loc, err := e.Approve(ctx, cfg.AuthCodeURL("p", oauth2.SetAuthURLParam("code_challenge", v), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
	if err != nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "p" {
		t.Errorf("plain challenge: %v %v", loc, err)
	}
}

// ---- generic OAuth2 (Gitea-like) ----

func TestOAuth2Flow(t *testing.T) {
	e := start(t, Options{Kind: OAuth2, ClientSecret: testSecret, User: User{Subject: "42", Nickname: "carol", Name: "Carol C", Email: "carol@gitea.example", Picture: "https://gitea.example/a/carol"}})
	ctx := ctxT(t)
	ep := e.Endpoints()
	if ep.AuthURL != e.URL()+"/login/oauth/authorize" || ep.TokenURL != e.URL()+"/login/oauth/access_token" || ep.UserinfoURL != e.URL()+"/api/v1/user" || ep.Issuer != "" || ep.JWKSURL != "" || ep.RevokeURL != "" {
		t.Errorf("Endpoints = %+v", ep)
	}
	cfg := config(e, "read:user")
	v := oauth2.GenerateVerifier()
	code := approve(t, e, cfg.AuthCodeURL("g", oauth2.S256ChallengeOption(v)), cbURL, "g")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("id_token") != nil {
		t.Error("an OAuth2 server issued an id_token")
	}
	r := send(t, "GET", ep.UserinfoURL, nil, bearer(tok.AccessToken))
	want := `{"id":42,"login":"carol","username":"carol","full_name":"Carol C","email":"carol@gitea.example","avatar_url":"https://gitea.example/a/carol"}`
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"id":42`)) || !jsonEqual(r.body, want) {
		t.Errorf("/api/v1/user = %d %s", r.status, r.body)
	}

	_, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(v))
	retrieveError(t, err, 400, map[string]any{"error": "unauthorized_client", "error_description": "client is not authorized"})

	code = approve(t, e, cfg.AuthCodeURL("g", oauth2.S256ChallengeOption(v)), cbURL, "g")
	_, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	retrieveError(t, err, 400, map[string]any{"error": "unauthorized_client", "error_description": "failed PKCE code challenge"})

	code = approve(t, e, cfg.AuthCodeURL("g"), cbURL, "g")
	other := *cfg
	other.RedirectURL = cbURL2
	_, err = other.Exchange(ctx, code)
	retrieveError(t, err, 400, map[string]any{"error": "unauthorized_client", "error_description": "unexpected redirect URI"})

	// A non-numeric subject is a JSON string.
	e.SetUser(User{Subject: "u-7", Nickname: "dave"})
	code = approve(t, e, cfg.AuthCodeURL("g"), cbURL, "g")
	tok, err = cfg.Exchange(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	r = send(t, "GET", ep.UserinfoURL, nil, bearer(tok.AccessToken))
	if !bytes.Contains(r.body, []byte(`"id":"u-7"`)) || bytes.Contains(r.body, []byte(`"email"`)) {
		t.Errorf("/api/v1/user = %s", r.body)
	}
}

// ---- all kinds ----

func TestDenyAndConsentPage(t *testing.T) {
	cases := []struct {
		kind     Kind
		scope    string
		approve  string
		wantDesc string
	}{
		{Kakao, "profile_nickname", "동의하고 계속하기", "User denied access"},
		{Naver, "", "동의하기", "Canceled By User"},
		{Google, "openid email", "Continue", "The user denied access to the app."},
		{OIDC, "openid", "Allow", "The resource owner denied the request."},
		{OAuth2, "", "Authorize Application", "The resource owner or authorization server denied the request."},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			e := start(t, Options{Kind: tc.kind, User: User{Subject: "77", Nickname: "닉네임77", Email: "u77@example.com"}})
			authURL := config(e).AuthCodeURL("deny-state", oauth2.SetAuthURLParam("scope", tc.scope))

			page := send(t, "GET", authURL, nil, nil)
			body := string(page.body)
			if page.status != 200 || !strings.Contains(body, `id="approve"`) || !strings.Contains(body, `id="deny"`) ||
				!strings.Contains(body, tc.approve) || !strings.Contains(body, "닉네임77") || !strings.Contains(body, testClientID) ||
				!strings.Contains(body, `method="post"`) {
				t.Errorf("consent page = %d\n%s", page.status, body)
			}
			if strings.Contains(body, "ZgotmplZ") {
				t.Errorf("template sanitised a value away:\n%s", body)
			}

			loc, err := e.Deny(ctxT(t), authURL)
			if err != nil {
				t.Fatal(err)
			}
			q := loc.Query()
			if loc.Scheme+"://"+loc.Host+loc.Path != cbURL || q.Get("error") != "access_denied" || q.Get("error_description") != tc.wantDesc || q.Get("state") != "deny-state" || q.Get("code") != "" {
				t.Errorf("Deny redirect = %s", loc)
			}
		})
	}
}

func TestConsentRequestIsSingleUse(t *testing.T) {
	e := start(t, Options{Kind: OIDC})
	page := send(t, "GET", config(e, "openid").AuthCodeURL("s"), nil, nil)
	id := reRequestID.FindSubmatch(page.body)
	if id == nil {
		t.Fatalf("no request_id in %s", page.body)
	}
	form := url.Values{"request_id": {string(id[1])}, "action": {"approve"}}
	if r := send(t, "POST", e.URL()+"/consent", form, nil); r.status != 302 {
		t.Fatalf("first consent = %d", r.status)
	}
	if r := send(t, "POST", e.URL()+"/consent", form, nil); r.status != 400 {
		t.Errorf("second consent = %d, want 400", r.status)
	}
}

func TestApproveFollowsRedirectToAuthorize(t *testing.T) {
	e := start(t, Options{Kind: Google})
	authURL := config(e, "openid").AuthCodeURL("s")
	// A stand-in for the broker's login URL, which redirects to the provider.
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, authURL, http.StatusFound)
	}))
	defer broker.Close()
	loc, err := e.Approve(ctxT(t), broker.URL+"/auth/login/google")
	if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "s" {
		t.Fatalf("Approve = %v, %v", loc, err)
	}
}

// ---- id_token faults ----

func TestIDTokenFaults(t *testing.T) {
	for _, kind := range []Kind{Kakao, Google, OIDC} {
		t.Run(string(kind), func(t *testing.T) { testIDTokenFaults(t, kind) })
	}
}

func testIDTokenFaults(t *testing.T, kind Kind) {
	scope := "openid email profile"
	if kind == Kakao {
		scope = "openid,profile_nickname,account_email"
	}
	sub := "3012345678"
	e := start(t, Options{Kind: kind, User: User{Subject: sub, Email: "x@example.com", EmailVerified: true, Nickname: "x"}, AttackerEndpoints: true})
	ctx := ctxT(t)
	vf := verifier(t, e, &oidc.Config{ClientID: testClientID})

	login := func(t *testing.T) (idToken, accessToken string) {
		t.Helper()
		cfg := config(e)
		v := oauth2.GenerateVerifier()
		code := approve(t, e, cfg.AuthCodeURL("s", oauth2.SetAuthURLParam("scope", scope), oauth2.S256ChallengeOption(v), oidc.Nonce("the-nonce")), cbURL, "s")
		tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		if raw == "" {
			t.Fatal("no id_token")
		}
		return raw, tok.AccessToken
	}
	jwks := func() jwk.Set { return fetchJWKS(t, e) }
	realKid := func() string {
		k, _ := jwks().Key(0)
		return k.KeyID()
	}()

	mustFail := func(t *testing.T, raw, want string) {
		t.Helper()
		_, err := vf.Verify(ctx, raw)
		if err == nil {
			t.Fatal("go-oidc accepted the defective id_token")
		}
		if want != "" && !strings.Contains(err.Error(), want) {
			t.Errorf("go-oidc error = %v, want it to mention %q", err, want)
		}
	}

	t.Run("honest", func(t *testing.T) {
		e.SetFaults(Faults{})
		raw, _ := login(t)
		idt, err := vf.Verify(ctx, raw)
		if err != nil || idt.Nonce != "the-nonce" || idt.Subject != sub {
			t.Fatalf("honest token: %v %+v", err, idt)
		}
	})
	t.Run("bad_signature", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: BadSignature})
		raw, _ := login(t)
		hdr, claims, _ := jwtParts(t, raw)
		if hdr["alg"] != "RS256" || hdr["kid"] != realKid || claims["sub"] != sub || claims["nonce"] != "the-nonce" {
			t.Errorf("only the signature should be wrong: %v %v", hdr, claims)
		}
		mustFail(t, raw, "signature")
	})
	t.Run("wrong_audience", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: WrongAudience})
		raw, _ := login(t)
		if _, claims, _ := jwtParts(t, raw); claims["aud"] == testClientID {
			t.Errorf("aud = %v", claims["aud"])
		}
		mustFail(t, raw, "audience")
	})
	t.Run("wrong_issuer", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: WrongIssuer})
		raw, _ := login(t)
		if _, claims, _ := jwtParts(t, raw); claims["iss"] == e.URL() {
			t.Errorf("iss = %v", claims["iss"])
		}
		mustFail(t, raw, "issuer")
	})
	t.Run("wrong_nonce", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: WrongNonce})
		raw, _ := login(t)
		idt, err := vf.Verify(ctx, raw) // go-oidc leaves the nonce to the caller
		if err != nil {
			t.Fatal(err)
		}
		if idt.Nonce == "the-nonce" || idt.Nonce == "" {
			t.Errorf("nonce = %q, want a different, non-empty one", idt.Nonce)
		}
	})
	t.Run("missing_nonce", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: MissingNonce})
		raw, _ := login(t)
		if _, claims, _ := jwtParts(t, raw); claims["nonce"] != nil {
			t.Errorf("nonce = %v", claims["nonce"])
		}
	})
	t.Run("expired", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: Expired})
		raw, _ := login(t)
		_, claims, _ := jwtParts(t, raw)
		if exp, _ := claims["exp"].(json.Number).Int64(); exp > time.Now().Add(-50*time.Minute).Unix() {
			t.Errorf("exp = %d, not an hour ago", exp)
		}
		mustFail(t, raw, "expired")
	})
	t.Run("future_iat", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: FutureIssuedAt})
		raw, _ := login(t)
		_, claims, _ := jwtParts(t, raw)
		if iat, _ := claims["iat"].(json.Number).Int64(); iat < time.Now().Add(50*time.Minute).Unix() {
			t.Errorf("iat = %d, not an hour ahead", iat)
		}
	})
	t.Run("alg_none", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: AlgNone})
		raw, _ := login(t)
		hdr, claims, sig := jwtParts(t, raw)
		if hdr["alg"] != "none" || len(sig) != 0 || claims["sub"] != sub {
			t.Errorf("header %v, %d signature bytes", hdr, len(sig))
		}
		mustFail(t, raw, "")
	})
	t.Run("hs256_public_key", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: HS256WithPublicKey})
		raw, _ := login(t)
		hdr, _, sig := jwtParts(t, raw)
		if hdr["alg"] != "HS256" || hdr["kid"] != realKid {
			t.Errorf("header = %v", hdr)
		}
		// The MAC key is the PEM of the published public key.
		k, _ := jwks().LookupKeyID(realKid)
		var pub rsa.PublicKey
		if err := k.Raw(&pub); err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&pub)
		mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		mac.Write([]byte(raw[:strings.LastIndexByte(raw, '.')]))
		if !hmac.Equal(mac.Sum(nil), sig) {
			t.Error("HS256 signature is not keyed with the public key PEM")
		}
		mustFail(t, raw, "")
	})
	t.Run("attacker_key", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: AttackerKey})
		raw, _ := login(t)
		hdr, _, _ := jwtParts(t, raw)
		if hdr["kid"] != realKid || hdr["alg"] != "RS256" {
			t.Errorf("header = %v", hdr)
		}
		k, _ := jwks().LookupKeyID(realKid)
		if _, err := jws.Verify([]byte(raw), jws.WithKey(jwa.RS256, k)); err == nil {
			t.Error("the attacker's token verifies with the published key")
		}
		mustFail(t, raw, "")
	})
	t.Run("missing_sub", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: MissingSub})
		raw, _ := login(t)
		if _, claims, _ := jwtParts(t, raw); claims["sub"] != nil {
			t.Errorf("sub = %v", claims["sub"])
		}
	})
	t.Run("sub_mismatch", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: SubMismatch})
		raw, at := login(t)
		_, claims, _ := jwtParts(t, raw)
		r := send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(at))
		if !bytes.Contains(r.body, []byte(sub)) || claims["sub"] == sub || claims["sub"] == nil {
			t.Errorf("id_token sub %v, userinfo %s", claims["sub"], r.body)
		}
	})
	// both returns an id_token with fault from a login and one from
	// MintIDToken.
	both := func(t *testing.T, fault IDTokenFault) []string {
		t.Helper()
		e.SetFaults(Faults{IDToken: fault})
		raw, _ := login(t)
		return []string{raw, e.MintIDToken(map[string]any{"nonce": "the-nonce"})}
	}
	// attackerKid checks that the header names a key of its own, not in the
	// JWKS, and returns its kid.
	attackerKid := func(t *testing.T, h jws.Headers) string {
		t.Helper()
		kid := h.KeyID()
		if _, published := jwks().LookupKeyID(kid); published || kid == "" || h.Algorithm() != jwa.RS256 {
			t.Fatalf("header kid %q alg %s: want RS256 and a kid not in the JWKS", kid, h.Algorithm())
		}
		return kid
	}
	// naiveAccepts fails unless raw verifies with key, as it would for a
	// verifier that takes keys from where the token's header says.
	naiveAccepts := func(t *testing.T, raw string, key any) {
		t.Helper()
		if _, err := jws.Verify([]byte(raw), jws.WithKey(jwa.RS256, key)); err != nil {
			t.Errorf("the header's key does not verify the token, the attack is moot: %v", err)
		}
	}
	t.Run("embedded_jwk", func(t *testing.T) {
		for _, raw := range both(t, EmbeddedJWK) {
			h := protectedHeaders(t, raw)
			kid := attackerKid(t, h)
			key := h.JWK()
			if key == nil || key.KeyID() != kid {
				t.Fatalf("header jwk %v, want the key of kid %s", key, kid)
			}
			if _, ok := key.(jwk.RSAPublicKey); !ok {
				t.Errorf("header jwk is a %T, want a public RSA key", key)
			}
			naiveAccepts(t, raw, key)
			mustFail(t, raw, "")
		}
	})
	t.Run("jku_header", func(t *testing.T) {
		for _, raw := range both(t, JKUHeader) {
			h := protectedHeaders(t, raw)
			kid := attackerKid(t, h)
			if h.JWKSetURL() != e.URL()+"/attacker/jwks.json" {
				t.Fatalf("jku = %q", h.JWKSetURL())
			}
			before := e.AttackerJWKSFetches()
			r := send(t, "GET", h.JWKSetURL(), nil, nil)
			if got := e.AttackerJWKSFetches(); got != before+1 {
				t.Errorf("AttackerJWKSFetches after a fetch of the jku: got %d, want %d", got, before+1)
			}
			set, err := jwk.Parse(r.body)
			if err != nil || r.status != 200 {
				t.Fatalf("jku answer %d: %v", r.status, err)
			}
			key, ok := set.LookupKeyID(kid)
			if !ok {
				t.Fatalf("the jku JWKS has no key %s", kid)
			}
			naiveAccepts(t, raw, key)
			mustFail(t, raw, "")
			if got := e.AttackerJWKSFetches(); got != before+1 {
				t.Errorf("go-oidc fetched the jku: AttackerJWKSFetches %d, want %d", got, before+1)
			}
		}
		disc := send(t, "GET", e.URL()+"/.well-known/openid-configuration", nil, nil)
		if bytes.Contains(disc.body, []byte("/attacker/")) || strings.Contains(fmt.Sprint(e.Endpoints()), "/attacker/") {
			t.Errorf("the attacker's URLs are advertised: %s %+v", disc.body, e.Endpoints())
		}
	})
	t.Run("x5u_header", func(t *testing.T) {
		for _, raw := range both(t, X5UHeader) {
			h := protectedHeaders(t, raw)
			kid := attackerKid(t, h)
			if h.X509URL() != e.URL()+"/attacker/cert.pem" {
				t.Fatalf("x5u = %q", h.X509URL())
			}
			before := e.AttackerJWKSFetches()
			r := send(t, "GET", h.X509URL(), nil, nil)
			if got := e.AttackerJWKSFetches(); got != before+1 {
				t.Errorf("AttackerJWKSFetches after a fetch of the x5u: got %d, want %d", got, before+1)
			}
			block, _ := pem.Decode(r.body)
			if block == nil || block.Type != "CERTIFICATE" {
				t.Fatalf("x5u answer %d is not a PEM certificate: %.100s", r.status, r.body)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil || !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
				t.Errorf("certificate is not self-signed: %v", err)
			}
			pub, ok := cert.PublicKey.(*rsa.PublicKey)
			if !ok {
				t.Fatalf("certificate key is a %T", cert.PublicKey)
			}
			k, _ := jwk.FromRaw(pub)
			if tp, err := k.Thumbprint(crypto.SHA256); err != nil || base64.RawURLEncoding.EncodeToString(tp) != kid {
				t.Errorf("certificate key is not kid %s (%v)", kid, err)
			}
			naiveAccepts(t, raw, pub)
			mustFail(t, raw, "")
		}
	})
	t.Run("wrong_azp", func(t *testing.T) {
		for _, raw := range both(t, WrongAZP) {
			_, claims, _ := jwtParts(t, raw)
			aud, _ := claims["aud"].([]any)
			if len(aud) != 2 || aud[0] != testClientID || aud[1] != "other-client" || claims["azp"] != "other-client" {
				t.Errorf("aud %v azp %v, want [%s other-client] and other-client", claims["aud"], claims["azp"], testClientID)
			}
			// go-oidc only checks that aud holds the client: the signature
			// and the audience pass, azp is the relying party's to check.
			if _, err := vf.Verify(ctx, raw); err != nil {
				t.Errorf("go-oidc: %v, want only azp wrong", err)
			}
		}
	})
	for _, tc := range []struct {
		fault IDTokenFault
		alg   string
	}{{AlgNoneTitle, "None"}, {AlgNoneUpper, "NONE"}, {AlgNoneMixed, "nOnE"}} {
		t.Run(string(tc.fault), func(t *testing.T) {
			for _, raw := range both(t, tc.fault) {
				hdr, claims, sig := jwtParts(t, raw)
				if hdr["alg"] != tc.alg || len(sig) != 0 || claims["sub"] != sub {
					t.Errorf("header %v, %d signature bytes, sub %v", hdr, len(sig), claims["sub"])
				}
				mustFail(t, raw, "")
			}
		})
	}
	// Last: it rotates the key.
	t.Run("unknown_kid", func(t *testing.T) {
		e.SetFaults(Faults{IDToken: UnknownKid})
		raw, _ := login(t)
		hdr, _, _ := jwtParts(t, raw)
		kid, _ := hdr["kid"].(string)
		if _, ok := jwks().LookupKeyID(kid); ok || kid == "" {
			t.Fatalf("kid %q is in the JWKS", kid)
		}
		mustFail(t, raw, "")
		before := e.JWKSFetches()
		e.RotateKey() // publishes the key: the token was merely ahead of the JWKS
		// go-oidc signals a finished fetch slightly before it lets the next
		// one start, so a verification right after mustFail may still join
		// the old fetch: allow a few tries.
		var err error
		for i := 0; i < 20; i++ {
			if _, err = vf.Verify(ctx, raw); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("after RotateKey: %v", err)
		}
		if e.JWKSFetches() <= before {
			t.Error("go-oidc did not refetch the JWKS")
		}
	})
}

// The attacker's key documents are served only to a test that asks.
func TestAttackerEndpointsOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		e := start(t, Options{Kind: OIDC, AttackerEndpoints: on})
		for _, path := range []string{"/attacker/jwks.json", "/attacker/cert.pem"} {
			r := send(t, "GET", e.URL()+path, nil, nil)
			if want := map[bool]int{false: 404, true: 200}[on]; r.status != want {
				t.Errorf("AttackerEndpoints %v: GET %s: got %d, want %d", on, path, r.status, want)
			}
		}
	}
}

func TestRotateKey(t *testing.T) {
	e := start(t, Options{Kind: OIDC})
	ctx := ctxT(t)
	vf := verifier(t, e, &oidc.Config{ClientID: testClientID})
	old := e.MintIDToken(nil)
	e.RotateKey()
	fresh := e.MintIDToken(nil)
	h1, _, _ := jwtParts(t, old)
	h2, _, _ := jwtParts(t, fresh)
	if h1["kid"] == h2["kid"] {
		t.Fatalf("same kid %v after RotateKey", h1["kid"])
	}
	if n := fetchJWKS(t, e).Len(); n != 2 {
		t.Errorf("JWKS has %d keys, want 2", n)
	}
	for _, raw := range []string{old, fresh} {
		if _, err := vf.Verify(ctx, raw); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	// kid is the RFC 7638 thumbprint.
	k, _ := fetchJWKS(t, e).LookupKeyID(h2["kid"].(string))
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil || base64.RawURLEncoding.EncodeToString(tp) != h2["kid"] {
		t.Errorf("kid %v is not the thumbprint (%v)", h2["kid"], err)
	}
}

func TestMintIDToken(t *testing.T) {
	clock := newClock()
	e := start(t, Options{Kind: Kakao, ExtraAudiences: []string{"native-app-key"}, User: kakaoUser(), Now: clock.Now})
	ctx := ctxT(t)
	raw := e.MintIDToken(map[string]any{"aud": "native-app-key", "nonce": "sdk-nonce", "nickname": "라이언"})
	idt, err := verifier(t, e, &oidc.Config{ClientID: "native-app-key", Now: clock.Now}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if idt.Issuer != e.URL() || idt.Subject != "9007199254740993" || idt.Nonce != "sdk-nonce" || !idt.Expiry.Equal(clock.Now().Add(time.Hour).Truncate(time.Second)) {
		t.Errorf("token = iss %q sub %q nonce %q exp %v", idt.Issuer, idt.Subject, idt.Nonce, idt.Expiry)
	}
	// The default audience is the client id.
	if _, err := verifier(t, e, &oidc.Config{ClientID: testClientID, Now: clock.Now}).Verify(ctx, e.MintIDToken(nil)); err != nil {
		t.Errorf("default aud: %v", err)
	}
	// Faults apply to minted tokens too.
	e.SetFaults(Faults{IDToken: BadSignature})
	if _, err := verifier(t, e, &oidc.Config{ClientID: testClientID, Now: clock.Now}).Verify(ctx, e.MintIDToken(nil)); err == nil {
		t.Error("BadSignature minted token verified")
	}
}

// ---- endpoint faults ----

func TestTokenFaults(t *testing.T) {
	e := start(t, Options{Kind: Kakao})
	ctx := ctxT(t)

	e.SetFaults(Faults{TokenStatus: 500})
	l := kakaoApprove(t, e, "profile_nickname")
	_, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != 500 || !strings.Contains(string(re.Body), "Internal Server Error") || !strings.HasPrefix(re.Response.Header.Get("Content-Type"), "text/html") {
		t.Errorf("500 fault: %v", err)
	}

	e.SetFaults(Faults{TokenStatus: 503, TokenBody: `{"error":"temporarily_unavailable"}`})
	_, err = l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
	if !errors.As(err, &re) || re.Response.StatusCode != 503 || string(re.Body) != `{"error":"temporarily_unavailable"}` {
		t.Errorf("503 fault with body: %v", err)
	}

	e.SetFaults(Faults{TokenStatus: 400})
	_, err = l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
	if !errors.As(err, &re) || re.Response.StatusCode != 400 || re.ErrorCode != "invalid_request" || !strings.Contains(string(re.Body), `"error_code":"KOE`) {
		t.Errorf("400 fault: %v", err)
	}

	e.SetFaults(Faults{TokenDelay: 10 * time.Second})
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err = l.cfg.Exchange(short, l.code, oauth2.VerifierOption(l.verifier))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) > 3*time.Second {
		t.Errorf("delay: err %v after %v", err, time.Since(began))
	}

	// The faults answered before the code was looked at: it still works.
	e.SetFaults(Faults{})
	if _, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier)); err != nil {
		t.Errorf("honest exchange after faults: %v", err)
	}
}

func TestUserinfoFaults(t *testing.T) {
	e := start(t, Options{Kind: Naver, ClientSecret: testSecret})
	cfg := config(e)
	code := approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
	tok, err := cfg.Exchange(ctxT(t), code, oauth2.SetAuthURLParam("state", "s"))
	if err != nil {
		t.Fatal(err)
	}
	e.SetFaults(Faults{UserinfoStatus: 502})
	if r := send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken)); r.status != 502 || !strings.Contains(string(r.body), "Bad Gateway") {
		t.Errorf("502 fault = %d %s", r.status, r.body)
	}
	e.SetFaults(Faults{UserinfoStatus: 401})
	if r := send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken)); r.status != 401 || !jsonEqual(r.body, `{"resultcode":"024","message":"Authentication failed"}`) {
		t.Errorf("401 fault = %d %s", r.status, r.body)
	}
	e.SetFaults(Faults{UserinfoStatus: 200, UserinfoBody: `{"resultcode":"024","message":"Authentication failed"}`})
	if r := send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken)); r.status != 200 || r.json(t)["resultcode"] != "024" {
		t.Errorf("200 envelope failure = %d %s", r.status, r.body)
	}
	e.SetFaults(Faults{UserinfoDelay: 10 * time.Second})
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(short, "GET", e.Endpoints().UserinfoURL, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("userinfo delay: %v", err)
	}
}

func TestHugeBody(t *testing.T) {
	e := start(t, Options{Kind: Google})
	e.SetFaults(Faults{HugeBody: true})
	cfg := config(e, "openid", "email")
	code := approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
	r := send(t, "POST", e.Endpoints().TokenURL, url.Values{"grant_type": {"authorization_code"}, "client_id": {testClientID}, "code": {code}, "redirect_uri": {cbURL}}, nil)
	if r.status != 200 || len(r.body) <= 2<<20 || !json.Valid(r.body) {
		t.Fatalf("token: %d, %d bytes, valid %v", r.status, len(r.body), json.Valid(r.body))
	}
	at, _ := r.json(t)["access_token"].(string)
	r = send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(at))
	if m := r.json(t); r.status != 200 || len(r.body) <= 2<<20 || m["sub"] != "108123456789012345678" {
		t.Errorf("userinfo: %d, %d bytes", r.status, len(r.body))
	}
}

func TestRevokeFault(t *testing.T) {
	e := start(t, Options{Kind: Google})
	cfg := config(e, "openid")
	code := approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
	tok, err := cfg.Exchange(ctxT(t), code)
	if err != nil {
		t.Fatal(err)
	}
	e.SetFaults(Faults{RevokeStatus: 503})
	if r := send(t, "POST", e.Endpoints().RevokeURL, url.Values{"token": {tok.AccessToken}}, nil); r.status != 503 {
		t.Errorf("revoke = %d, want 503", r.status)
	}
	if r := send(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken)); r.status != 200 {
		t.Errorf("a failed revoke revoked the token: %d", r.status)
	}
}

// ---- bookkeeping, validation, concurrency ----

func TestCallsRecorded(t *testing.T) {
	e := start(t, Options{Kind: Kakao, ClientSecret: testSecret})
	l := kakaoApprove(t, e, "profile_nickname")
	if _, err := l.cfg.Exchange(ctxT(t), l.code, oauth2.VerifierOption(l.verifier)); err != nil {
		t.Fatal(err)
	}
	calls := e.Calls()
	var paths []string
	for _, c := range calls {
		paths = append(paths, c.Method+" "+c.Path)
	}
	if want := []string{"GET /oauth/authorize", "POST /oauth/consent", "POST /oauth/token"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("calls = %v, want %v", paths, want)
	}
	if calls[0].Form.Get("code_challenge_method") != "S256" || calls[2].Form.Get("code") != l.code || calls[2].Form.Get("grant_type") != "authorization_code" {
		t.Errorf("recorded forms = %v / %v", calls[0].Form, calls[2].Form)
	}
	calls[2].Form.Set("code", "mutated")
	if e.Calls()[2].Form.Get("code") != l.code {
		t.Error("Calls returns shared maps")
	}
	if e.CallCount("/oauth/token") != 1 || e.CallCount("/v2/user/me") != 0 {
		t.Errorf("CallCount = %d/%d", e.CallCount("/oauth/token"), e.CallCount("/v2/user/me"))
	}
}

func TestStartValidation(t *testing.T) {
	if _, err := Start(Options{Kind: "facebook", ClientID: "x"}); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := Start(Options{Kind: Kakao}); err == nil {
		t.Error("empty ClientID accepted")
	}
	if _, err := Start(Options{Kind: Kakao, ClientID: "x", User: User{Subject: "abc"}}); err == nil {
		t.Error("non-numeric Kakao subject accepted")
	}
	e := start(t, Options{Kind: Kakao})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("SetUser accepted a non-numeric Kakao subject")
			}
		}()
		e.SetUser(User{Subject: "01"})
	}()
	if !strings.HasPrefix(e.URL(), "http://127.0.0.1:") || strings.HasSuffix(e.URL(), "/") {
		t.Errorf("URL = %q", e.URL())
	}
	e.Close()
	e.Close() // idempotent
}

func TestConcurrentFlows(t *testing.T) {
	e := start(t, Options{Kind: Kakao, ClientSecret: testSecret})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%4 == 0 {
				e.SetUser(User{Subject: fmt.Sprint(1000 + i), Nickname: "n"})
				e.SetFaults(Faults{})
			}
			cfg := config(e)
			v := oauth2.GenerateVerifier()
			state := fmt.Sprint("s", i)
			loc, err := e.Approve(ctx, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("scope", "openid,profile_nickname")))
			if err != nil {
				errs <- err
				return
			}
			tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(v))
			if err != nil {
				errs <- err
				return
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", e.Endpoints().UserinfoURL, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("userinfo %d", resp.StatusCode)
			}
			_ = e.Calls()
			_ = e.MintIDToken(nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
