package verify_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbroker/broker/internal/testclock"
	"github.com/socialbroker/broker/verify"
)

// issuer is a minimal token issuer with its own keys, for what a real
// broker never signs: other headers, repeated members, odd claim types,
// other JWKS answers.
type issuer struct {
	srv     *httptest.Server
	clock   *testclock.Clock
	key     *rsa.PrivateKey
	fetches atomic.Int64

	mu       sync.Mutex
	cacheCtl string
	age      string
	status   int              // JWKS answer status; 0: 200
	extra    []map[string]any // more JWKS entries
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	is := &issuer{clock: testclock.New(time.Unix(1_800_000_000, 0)), key: foreign(t), cacheCtl: "max-age=600"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		if is.cacheCtl != "" {
			w.Header().Set("Cache-Control", is.cacheCtl)
		}
		if is.age != "" {
			w.Header().Set("Age", is.age)
		}
		if is.status != 0 {
			w.WriteHeader(is.status)
			return
		}
		keys := append([]map[string]any{jwkOf(&is.key.PublicKey, "k1", "RS256")}, is.extra...)
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func jwkOf(pub *rsa.PublicKey, kid, alg string) map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "alg": alg, "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func (is *issuer) set(f func(is *issuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	f(is)
}

func (is *issuer) verifier(t *testing.T, realm string) *verify.Verifier {
	t.Helper()
	v, err := verify.NewWithConfig(context.Background(), verify.Config{
		Issuer: is.srv.URL, Audience: audience, Now: is.clock.Now, Realm: realm,
	})
	if err != nil {
		t.Fatalf("verify.NewWithConfig: %v", err)
	}
	return v
}

func (is *issuer) claims() map[string]any {
	now := is.clock.Now()
	return map[string]any{
		"iss": is.srv.URL, "sub": "u1", "aud": audience, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(), "jti": "j1", "sid": "s1", "idp": "kakao",
	}
}

// signRaw signs the given header and claims JSON texts as they are.
func (is *issuer) signRaw(t *testing.T, header, claims string) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	return in + "." + base64.RawURLEncoding.EncodeToString(rsaSigner(t, is.key)([]byte(in)))
}

func (is *issuer) sign(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return is.signRaw(t, string(h), string(c))
}

var stdHeader = map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": "k1"}

// Headers and claims that only a key holder can sign: the signature
// verifies, so the refusal comes from the header or claims check.
func TestSignedHeaderAndClaims(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	v := is.verifier(t, "")
	good := is.claims()
	goodJSON, _ := json.Marshal(good)
	claimsWith := func(extra string) string { return strings.TrimSuffix(string(goodJSON), "}") + "," + extra + "}" }
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"well formed", is.sign(t, stdHeader, good), nil},
		{"fractional exp", is.sign(t, stdHeader, with(good, "exp", float64(is.clock.Now().Unix())+600.5)), nil},
		{"aud array", is.sign(t, stdHeader, with(good, "aud", []string{"a", audience})), nil},
		{"typ missing", is.sign(t, with(stdHeader, "typ", nil), good), verify.ErrType},
		{"typ JWT", is.sign(t, with(stdHeader, "typ", "JWT"), good), verify.ErrType},
		{"typ AT+JWT", is.sign(t, with(stdHeader, "typ", "AT+JWT"), good), verify.ErrType},
		{"alg repeated in the header", is.signRaw(t, `{"alg":"RS256","typ":"at+jwt","kid":"k1","alg":"RS256"}`, string(goodJSON)), verify.ErrMalformed},
		{"header an array", is.signRaw(t, `["RS256"]`, string(goodJSON)), verify.ErrMalformed},
		{"data after the header", is.signRaw(t, `{"alg":"RS256","typ":"at+jwt","kid":"k1"}{}`, string(goodJSON)), verify.ErrMalformed},
		{"sub repeated in the claims", is.signRaw(t, `{"alg":"RS256","typ":"at+jwt","kid":"k1"}`, claimsWith(`"sub":"admin"`)), verify.ErrMalformed},
		{"claims not UTF-8", is.signRaw(t, `{"alg":"RS256","typ":"at+jwt","kid":"k1"}`, claimsWith("\"x\":\"\xff\"")), verify.ErrMalformed},
		{"aud array with a number", is.sign(t, stdHeader, with(good, "aud", []any{audience, 1})), verify.ErrMalformed},
		{"exp negative", is.sign(t, stdHeader, with(good, "exp", -1)), verify.ErrMalformed},
		{"exp null", is.signRaw(t, `{"alg":"RS256","typ":"at+jwt","kid":"k1"}`, strings.Replace(string(goodJSON), `"exp":`, `"exp":null,"x":`, 1)), verify.ErrMalformed},
		{"sub a number", is.sign(t, stdHeader, with(good, "sub", 1)), verify.ErrMalformed},
		{"no iat", is.sign(t, stdHeader, with(good, "iat", nil)), verify.ErrMissingClaim},
		{"empty sid", is.sign(t, stdHeader, with(good, "sid", "")), verify.ErrMissingClaim},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), c.token)
			if c.want == nil && err != nil {
				t.Fatalf("got %v, want accepted", err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	claims, err := v.Verify(context.Background(), is.sign(t, stdHeader, with(good, "tenant", "t-9", "level", 3)))
	if err != nil {
		t.Fatal(err)
	}
	if claims.Raw["tenant"] != "t-9" || claims.Raw["level"] != json.Number("3") {
		t.Errorf("raw claims: got tenant %v, level %#v; want t-9, json.Number 3", claims.Raw["tenant"], claims.Raw["level"])
	}
}

// Only RSA signing keys for RS256 of at least 2048 bits count; a kid
// published twice counts as none.
func TestJWKSKeyFilter(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	second, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	encKey := jwkOf(&second.PublicKey, "enc", "RS256")
	encKey["use"] = "enc"
	extra := []map[string]any{
		jwkOf(&second.PublicKey, "rs384", "RS384"),
		jwkOf(&small.PublicKey, "small", "RS256"),
		encKey,
		jwkOf(&second.PublicKey, "twice", "RS256"),
		jwkOf(&is.key.PublicKey, "twice", "RS256"),
		jwkOf(&second.PublicKey, "noalg", ""),
	}
	extra[5]["alg"] = nil
	is.set(func(is *issuer) { is.extra = extra })
	v := is.verifier(t, "")
	signWith := func(key *rsa.PrivateKey, kid string) string {
		return withHeader("x."+b64(is.claims())+".x", with(stdHeader, "kid", kid), rsaSigner(t, key))
	}
	cases := []struct {
		kid  string
		key  *rsa.PrivateKey
		want error
	}{
		{"k1", is.key, nil},
		{"noalg", second, nil},
		{"rs384", second, verify.ErrUnknownKey},
		{"small", small, verify.ErrUnknownKey},
		{"enc", second, verify.ErrUnknownKey},
		{"twice", is.key, verify.ErrUnknownKey},
	}
	for _, c := range cases {
		_, err := v.Verify(context.Background(), signWith(c.key, c.kid))
		if (c.want == nil && err != nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("kid %s: got %v, want %v", c.kid, err, c.want)
		}
	}
}

// How long a JWKS answer is used, by its Cache-Control (and Age).
func TestCacheTTLBounds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		cacheCtl, age string
		want          time.Duration
	}{
		{"max-age=600", "", 10 * time.Minute},
		{"public, max-age=120, must-revalidate", "", 2 * time.Minute},
		{`max-age="120"`, "", 2 * time.Minute},
		{"max-age=600", "100", 500 * time.Second},
		{"max-age=600", "9999", verify.MinCacheTTL},
		{"max-age=0", "", verify.MinCacheTTL},
		{"max-age=5", "", verify.MinCacheTTL},
		{"no-store", "", verify.MinCacheTTL},
		{"no-cache, max-age=600", "", verify.MinCacheTTL},
		{"max-age=later", "", verify.MinCacheTTL},
		{"max-age=99999999", "", verify.MaxCacheTTL},
		{"", "", verify.DefaultCacheTTL},
	}
	for _, c := range cases {
		t.Run(c.cacheCtl+" age "+c.age, func(t *testing.T) {
			t.Parallel()
			is := newIssuer(t)
			is.set(func(is *issuer) { is.cacheCtl, is.age = c.cacheCtl, c.age })
			v := is.verifier(t, "")
			is.clock.Advance(c.want - time.Second)
			tok := is.sign(t, stdHeader, is.claims())
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			if got := is.fetches.Load(); got != 1 {
				t.Fatalf("1 s before %s: got %d fetches, want 1", c.want, got)
			}
			is.clock.Advance(time.Second)
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			if got := is.fetches.Load(); got != 2 {
				t.Fatalf("at %s: got %d fetches, want 2", c.want, got)
			}
		})
	}
}

// When the JWKS cannot be fetched, the cached keys stay in use and the
// verifier retries at most once per cooldown.
func TestStaleKeysWhenJWKSFails(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	v := is.verifier(t, "")
	is.set(func(is *issuer) { is.status = http.StatusServiceUnavailable })
	is.clock.Advance(10 * time.Minute) // max-age=600: stale
	for i := range 5 {
		tok := is.sign(t, stdHeader, is.claims())
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("try %d: got %v, want accepted with the cached key", i, err)
		}
	}
	if got := is.fetches.Load(); got != 2 {
		t.Errorf("fetches: got %d, want 2 (New's, one failed retry)", got)
	}
	is.clock.Advance(verify.RefetchCooldown)
	is.set(func(is *issuer) { is.status = 0 })
	if _, err := v.Verify(context.Background(), is.sign(t, stdHeader, is.claims())); err != nil {
		t.Fatal(err)
	}
	if got := is.fetches.Load(); got != 3 {
		t.Errorf("fetches after the cooldown: got %d, want 3", got)
	}
	// New, however, needs the JWKS.
	is.set(func(is *issuer) { is.status = http.StatusInternalServerError })
	if _, err := verify.New(context.Background(), is.srv.URL, audience); err == nil {
		t.Errorf("New with a failing JWKS: got nil error, want one")
	}
}
