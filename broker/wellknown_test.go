package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/broker/keys"
)

type jwksDoc struct {
	Keys []struct {
		Kty, Kid, Use, Alg, N, E string
	} `json:"keys"`
}

func getJWKS(t *testing.T, env *brokertest.Env) (jwksDoc, response) {
	t.Helper()
	r := do(t, &http.Client{}, "GET", env.URL+"/.well-known/jwks.json", nil, nil)
	wantStatus(t, r, 200)
	var d jwksDoc
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	return d, r
}

func TestJWKSAndDiscovery(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	d, r := getJWKS(t, env)
	if len(d.Keys) != 1 {
		t.Fatalf("keys = %d, want 1", len(d.Keys))
	}
	k := d.Keys[0]
	if k.Kty != "RSA" || k.Use != "sig" || k.Alg != "RS256" || k.N == "" || k.E != "AQAB" || k.Kid == "" {
		t.Fatalf("jwk = %+v", k)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=600" {
		t.Fatalf("Cache-Control = %q, want public, max-age=600", cc)
	}
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	nm := do(t, &http.Client{}, "GET", env.URL+"/.well-known/jwks.json", nil, map[string]string{"If-None-Match": etag})
	wantStatus(t, nm, 304)
	if len(nm.body) != 0 {
		t.Fatal("304 with a body")
	}
	wantStatus(t, do(t, &http.Client{}, "GET", env.URL+"/.well-known/jwks.json", nil, map[string]string{"If-None-Match": `"other"`}), 200)

	dr := do(t, &http.Client{}, "GET", env.URL+"/.well-known/openid-configuration", nil, nil)
	wantStatus(t, dr, 200)
	var disc map[string]any
	if err := json.Unmarshal(dr.body, &disc); err != nil {
		t.Fatal(err)
	}
	if disc["issuer"] != env.URL || disc["jwks_uri"] != env.URL+"/.well-known/jwks.json" ||
		disc["token_endpoint"] != env.URL+"/auth/token" || disc["userinfo_endpoint"] != env.URL+"/auth/me" {
		t.Fatalf("discovery = %v", disc)
	}
	if algs, _ := disc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "RS256" {
		t.Fatalf("algs = %v", disc["id_token_signing_alg_values_supported"])
	}
}

// The demo frontend is served only with demo: true (broker-dev sets it).
func TestDemoOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	off := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, NoDemo: true})
	wantStatus(t, do(t, &http.Client{}, "GET", off.URL+"/demo/", nil, nil), 404)
	on := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}})
	wantStatus(t, do(t, &http.Client{}, "GET", on.URL+"/demo/", nil, nil), 200)
}

// Every answer of a CORS-capable path varies by Origin, also to a request
// without one, so a shared cache never serves it to another origin.
func TestVaryOriginAlways(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}})
	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/openid-configuration", "/auth/me"} {
		for _, hdr := range []map[string]string{nil, {"Origin": "https://app.example.com"}, {"Origin": "https://evil.example"}} {
			r := do(t, &http.Client{}, "GET", env.URL+path, nil, hdr)
			if !slices.Contains(r.Header.Values("Vary"), "Origin") {
				t.Errorf("GET %s with %v: Vary %q, want Origin", path, hdr, r.Header.Values("Vary"))
			}
		}
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	c := &http.Client{}
	wantStatus(t, do(t, c, "GET", env.URL+"/healthz", nil, nil), 200)
	wantStatus(t, do(t, c, "GET", env.URL+"/readyz", nil, nil), 200)
	tok, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok)), 200)
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie("x")), 401)
	m := do(t, c, "GET", env.URL+"/metrics", nil, nil)
	wantStatus(t, m, 200)
	for _, want := range []string{
		`broker_http_requests_total{route="POST /auth/token",status="200"} 1`,
		`broker_http_requests_total{route="POST /auth/token",status="401"} 1`,
		`broker_refresh_total{outcome="ok"} 1`,
		`broker_refresh_total{outcome="refused"} 1`,
		`broker_access_tokens_issued_total 1`,
		`broker_key_rotations_total 1`,
	} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// With admin.listen set, /metrics is served there only, and only there are
// the refresh outcomes that the token endpoint's identical 401s hide told
// apart; the public listener answers 404.
func TestMetricsOnAdminListener(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Extra: "admin:\n  listen: 127.0.0.1:9\n"})
	admin := httptest.NewServer(env.Broker.AdminHandler())
	t.Cleanup(admin.Close)
	c := &http.Client{}
	tok, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok)), 200)
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok)), 200) // a retry within the grace
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie("x")), 401)
	wantStatus(t, do(t, c, "GET", env.URL+"/metrics", nil, nil), 404)
	m := do(t, c, "GET", admin.URL+"/metrics", nil, nil)
	wantStatus(t, m, 200)
	for _, want := range []string{
		`broker_refresh_total{outcome="rotated"} 1`,
		`broker_refresh_total{outcome="retried"} 1`,
		`broker_refresh_total{outcome="malformed"} 1`,
	} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("admin metrics lack %q", want)
		}
	}
}

// A verifier that caches the JWKS for its max-age never meets an unknown
// kid across a rotation: the new key is published for at least max-age
// before it signs, and the old one stays published while its tokens live.
func TestKeyRotationOverlap(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{MaxAge: time.Minute, AccessTTL: 2 * time.Minute})
	tok, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	c := &http.Client{}
	ctx := context.Background()

	type cached struct {
		kids    map[string]bool
		fetched time.Time
	}
	var cache cached
	fetch := func() {
		d, _ := getJWKS(t, env)
		cache = cached{kids: map[string]bool{}, fetched: env.Clock.Now()}
		for _, k := range d.Keys {
			cache.kids[k.Kid] = true
		}
	}
	fetch()
	var tokens []struct {
		kid string
		exp time.Time
	}
	first := ""
	kidsSeen := map[string]bool{}
	rotated := false
	// Walk the clock in 10 s steps through a rotation and past the old key's removal.
	for step := 0; step < 60; step++ {
		if step == 3 {
			kid, at, err := env.Keys.Rotate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := env.Clock.Now().Add(keys.PublishDelay + time.Minute); !at.Equal(want) {
				t.Fatalf("new key activates at %v, want %v", at, want)
			}
			if kid == first {
				t.Fatal("rotation returned the active key")
			}
			rotated = true
		}
		if err := env.Keys.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if env.Clock.Now().Sub(cache.fetched) >= time.Minute { // the verifier honours max-age
			fetch()
		}
		r := do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
		wantStatus(t, r, 200)
		tok = r.cookie("refresh_token").Value
		at := r.json(t).AccessToken
		var hdr struct{ Kid string }
		_ = json.Unmarshal(mustB64(t, strings.Split(at, ".")[0]), &hdr)
		if first == "" {
			first = hdr.Kid
		}
		kidsSeen[hdr.Kid] = true
		tokens = append(tokens, struct {
			kid string
			exp time.Time
		}{hdr.Kid, env.Clock.Now().Add(2 * time.Minute)})
		// Every unexpired token must verify against the verifier's cached JWKS.
		for _, tk := range tokens {
			if env.Clock.Now().Before(tk.exp) && !cache.kids[tk.kid] {
				t.Fatalf("step %d: verifier's cached JWKS lacks kid %s of a live token", step, tk.kid)
			}
		}
		env.Clock.Advance(10 * time.Second)
	}
	if !rotated || len(kidsSeen) != 2 {
		t.Fatalf("kids used = %v, want the old and the new", kidsSeen)
	}
	d, _ := getJWKS(t, env)
	if len(d.Keys) != 1 || d.Keys[0].Kid == first {
		t.Fatalf("after removal the JWKS holds %d keys (old kid present: %v), want only the new one", len(d.Keys), len(d.Keys) > 0 && d.Keys[0].Kid == first)
	}
}

// Two brokers on one database agree on the active key and publish the
// same keys.
func TestTwoBrokersAgreeOnKeys(t *testing.T) {
	t.Parallel()
	a := brokertest.New(t, brokertest.Options{MaxAge: time.Minute})
	clock := a.Clock
	b := brokertest.New(t, brokertest.Options{DatabaseURL: a.Config.Database.URL, MaxAge: time.Minute, Clock: clock})
	ctx := context.Background()
	ka, _ := a.Keys.Active()
	kb, _ := b.Keys.Active()
	if ka.KID != kb.KID {
		t.Fatalf("active keys differ: %s vs %s", ka.KID, kb.KID)
	}
	if _, _, err := b.Keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Keys.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ja, _ := getJWKS(t, a)
	jb, _ := getJWKS(t, b)
	if len(ja.Keys) != 2 || len(jb.Keys) != 2 {
		t.Fatalf("published keys: a %d, b %d; want 2 each", len(ja.Keys), len(jb.Keys))
	}
	clock.Advance(keys.PublishDelay + time.Minute)
	ka, _ = a.Keys.Active()
	kb, _ = b.Keys.Active()
	if ka.KID != kb.KID || ka.KID == ja.Keys[0].Kid {
		t.Fatalf("after activation: a %s, b %s; want the same new key", ka.KID, kb.KID)
	}
	// Concurrent Ensure calls never create two keys at once.
	clock.Advance(800 * time.Hour)
	errs := make(chan error, 2)
	go func() { errs <- a.Keys.Ensure(ctx) }()
	go func() { errs <- b.Keys.Ensure(ctx) }()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	rows, err := a.Store.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, r := range rows {
		if r.ActivatesAt.After(clock.Now()) {
			next++
		}
	}
	if next != 1 {
		t.Fatalf("scheduled next keys = %d, want exactly 1", next)
	}
}

// tokens.profile_claims copies those profile fields into access tokens;
// by default a token carries no personal data.
func TestProfileClaims(t *testing.T) {
	t.Parallel()
	claimsOf := func(env *brokertest.Env, c *http.Client) map[string]any {
		t.Helper()
		at := currentAccess(t, env, c)
		var m map[string]any
		if err := json.Unmarshal(mustB64(t, strings.Split(at, ".")[1]), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Fields: []string{"nickname", "team"},
		ProfileClaims: []string{"nickname", "team"}})
	c := env.Client()
	r := do(t, c, "GET", approve(t, env, "kakao", startLogin(t, env, c, "kakao", "")), nil, nil)
	m := csrfRE.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no signup form: %s", r.body)
	}
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {string(m[1])}, "nickname": {"라이언"}, "team": {"blue"}}, nil), 303)
	got := claimsOf(env, c)
	if got["nickname"] != "라이언" || got["team"] != "blue" {
		t.Fatalf("claims = %v, want nickname and team", got)
	}
	plain := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	pc := plain.Client()
	loginAs(t, plain, pc, "kakao", "")
	for k := range claimsOf(plain, pc) {
		switch k {
		case "iss", "sub", "aud", "iat", "nbf", "exp", "jti", "sid", "idp":
		default:
			t.Fatalf("default token carries claim %q", k)
		}
	}
}
