// Package e2e drives a whole broker (brokertest: real Postgres, emulated
// providers) from the outside, the way its users do: a real browser
// (Chromium through chromedp) and the standard token verifiers that
// services use (go-oidc, jwx, and the JavaScript jose library).
package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/broker/keys"
	"github.com/socialbroker/broker/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// audience is tokens.audience in brokertest's config.
const audience = "https://api.example.com"

// session is a signed-in user of env: a session made through the store,
// and the refresh token that the next POST /auth/token presents.
type session struct {
	env     *brokertest.Env
	refresh string
}

func newSession(t *testing.T, env *brokertest.Env, userID string) *session {
	t.Helper()
	tok, _ := env.NewSession(t, userID)
	return &session{env: env, refresh: tok}
}

// accessToken posts the refresh cookie to /auth/token, as a browser does,
// keeps the rotated refresh token and returns the access token.
func (s *session) accessToken(t *testing.T) string {
	t.Helper()
	req, err := http.NewRequest("POST", s.env.URL+"/auth/token", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", "refresh_token="+s.refresh)
	resp, err := s.env.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST /auth/token: status %d, body %s", resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" || tr.TokenType != "Bearer" {
		t.Fatalf("POST /auth/token: body %s (%v)", body, err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "refresh_token" && c.Value != "" {
			s.refresh = c.Value
		}
	}
	return tr.AccessToken
}

// jwtParts splits a compact JWS and decodes its header and claims.
func jwtParts(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("token %q is not a compact JWS", tok)
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("token part %q: %v", s, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("token part %s: %v", b, err)
		}
		return m
	}
	return dec(p[0]), dec(p[1])
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	h, _ := jwtParts(t, tok)
	kid, _ := h["kid"].(string)
	if kid == "" {
		t.Fatalf("token header %v has no kid", h)
	}
	return kid
}

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// flipByte changes one base64url character in the middle of part i
// (0 header, 1 claims, 2 signature) to another valid one.
func flipByte(tok string, i int) string {
	p := strings.Split(tok, ".")
	s := []byte(p[i])
	j := len(s) / 2
	if s[j] == 'A' {
		s[j] = 'B'
	} else {
		s[j] = 'A'
	}
	p[i] = string(s)
	return strings.Join(p, ".")
}

// withHeader re-encodes tok's claims under header and signs the result
// with sign (nil: an empty signature, as for alg none).
func withHeader(t *testing.T, tok string, header map[string]any, sign func(signingInput []byte) []byte) string {
	t.Helper()
	p := strings.Split(tok, ".")
	in := b64(header) + "." + p[1]
	sig := ""
	if sign != nil {
		sig = base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
	}
	return in + "." + sig
}

// publicKey returns the broker's RSA public key named kid.
func publicKey(t *testing.T, env *brokertest.Env, kid string) *rsa.PublicKey {
	t.Helper()
	pub, ok := env.Keys.PublicKey(kid)
	if !ok {
		t.Fatalf("no published key %s", kid)
	}
	return pub
}

// hmacSecrets are the encodings of an RSA public key that an
// algorithm-confusion attacker would try as an HS256 secret.
func hmacSecrets(t *testing.T, pub *rsa.PublicKey) map[string][]byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	jwkJSON, _ := json.Marshal(map[string]string{
		"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	})
	return map[string][]byte{
		"pem":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"der":     der,
		"pkcs1":   pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}),
		"modulus": pub.N.Bytes(),
		"jwk":     jwkJSON,
	}
}

// tokenCase is one token a verifier is shown, with what it must say.
type tokenCase struct {
	name     string
	token    string
	issuer   string // expected issuer (the broker's unless a case changes it)
	audience string // expected audience
	accept   bool
}

// tamperCases builds, from a fresh token of env, the fresh token itself
// (accepted) and every altered or forged variant that must be refused.
// The expectations about issuer and audience are the verifier's config:
// a broker-signed token cannot be minted with another iss or aud from
// outside, so those refusals come from a verifier expecting another one.
func tamperCases(t *testing.T, env *brokertest.Env, fresh string) []tokenCase {
	t.Helper()
	hdr, _ := jwtParts(t, fresh)
	if hdr["alg"] != "RS256" || hdr["typ"] != "at+jwt" {
		t.Fatalf("access token header = %v, want alg RS256, typ at+jwt", hdr)
	}
	kid := kidOf(t, fresh)
	c := func(name, tok string, accept bool) tokenCase {
		return tokenCase{name: name, token: tok, issuer: env.URL, audience: audience, accept: accept}
	}
	cases := []tokenCase{
		c("fresh", fresh, true),
		c("flipped signature byte", flipByte(fresh, 2), false),
		c("flipped claims byte", flipByte(fresh, 1), false),
		c("flipped header byte", flipByte(fresh, 0), false),
		c("signature removed", withHeader(t, fresh, hdr, nil), false),
		c("alg none", withHeader(t, fresh, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, nil), false),
		c("alg None", withHeader(t, fresh, map[string]any{"alg": "None", "typ": "at+jwt", "kid": kid}, nil), false),
	}
	pub := publicKey(t, env, kid)
	for enc, secret := range hmacSecrets(t, pub) {
		tok := withHeader(t, fresh, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, func(in []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(in)
			return m.Sum(nil)
		})
		cases = append(cases, c("HS256 with our public key ("+enc+") as secret", tok, false))
	}
	// Signed by a key that is not ours, naming our kid (and no kid).
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsSign := func(in []byte) []byte {
		sum := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, other, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	cases = append(cases,
		c("foreign key with our kid", withHeader(t, fresh, hdr, rsSign), false),
		c("foreign key, unknown kid", withHeader(t, fresh, map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": "not-ours"}, rsSign), false),
	)
	wrongIss := c("expecting another issuer", fresh, false)
	wrongIss.issuer = "https://other-issuer.example"
	wrongAud := c("expecting another audience", fresh, false)
	wrongAud.audience = "https://other-api.example"
	return append(cases, wrongIss, wrongAud)
}

// verifyFunc checks tok as a service would, expecting issuer and
// audience; nil means accepted.
type verifyFunc func(ctx context.Context, tok, issuer, audience string) error

// checkCases runs every case through verify.
func checkCases(t *testing.T, verify verifyFunc, cases []tokenCase) {
	t.Helper()
	for _, c := range cases {
		err := verify(context.Background(), c.token, c.issuer, c.audience)
		switch {
		case c.accept && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case !c.accept && err == nil:
			t.Errorf("%s: accepted, want refused", c.name)
		case err != nil:
			t.Logf("%s: refused as expected: %v", c.name, err)
		}
	}
}

// verifierSuite is the whole check every verifier gets from one broker:
// accept/refuse cases, a key rotation (tokens of the old and the new key
// verify with the same verifier instance, which must refetch the JWKS on
// the new kid), then expiry by the broker's clock.
func verifierSuite(t *testing.T, env *brokertest.Env, verify verifyFunc) {
	t.Helper()
	ctx := context.Background()
	sess := newSession(t, env, env.NewUser(t, "kakao", "1"))
	before := sess.accessToken(t)
	checkCases(t, verify, tamperCases(t, env, before))
	if t.Failed() {
		return
	}

	// Rotation. The verifier has cached a JWKS holding the first key only.
	oldKid := kidOf(t, before)
	newKid, activates, err := env.Keys.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid {
		t.Fatalf("rotate returned the active kid %s", newKid)
	}
	if tok := sess.accessToken(t); kidOf(t, tok) != oldKid {
		t.Fatalf("a token minted right after rotate names kid %s; the new key must be published for jwks_max_age before it signs", kidOf(t, tok))
	}
	env.Clock.Advance(keys.PublishDelay + env.Config.Keys.JWKSMaxAge + time.Second)
	if now := env.Clock.Now(); now.Before(activates) {
		t.Fatalf("clock %v is before the new key's activation %v", now, activates)
	}
	if err := env.Keys.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	after := sess.accessToken(t)
	if kidOf(t, after) != newKid {
		t.Fatalf("after activation the token names kid %s, want the new key %s", kidOf(t, after), newKid)
	}
	if err := verify(ctx, after, env.URL, audience); err != nil {
		t.Errorf("token of the new key %s: refused: %v", newKid, err)
	}
	if err := verify(ctx, before, env.URL, audience); err != nil {
		t.Errorf("token of the old key %s after rotation: refused: %v", oldKid, err)
	}
	checkCases(t, verify, tamperCases(t, env, after)[1:]) // the tampered variants of the new key's token too

	// Expiry: past access_ttl on the broker's clock, both are refused.
	env.Clock.Advance(env.Config.Tokens.AccessTTL + time.Second)
	for name, tok := range map[string]string{"old key": before, "new key": after} {
		if err := verify(ctx, tok, env.URL, audience); err == nil {
			t.Errorf("expired token (%s): accepted", name)
		} else {
			t.Logf("expired token (%s): refused as expected: %v", name, err)
		}
	}
}

// newEnv is the broker every verifier test runs against: a short
// jwks_max_age so the rotation fits in the access token's lifetime.
func newEnv(t *testing.T) *brokertest.Env {
	t.Helper()
	return brokertest.New(t, brokertest.Options{
		Providers: []string{"kakao"}, AccessTTL: 10 * time.Minute, MaxAge: time.Minute,
	})
}

// jsonLine is one line of JSON, compacted.
func jsonLine(v any) []byte {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		panic(err)
	}
	return b.Bytes()
}
