package verify_test

import (
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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/pgtest"
	"github.com/socialbroker/broker/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// audience is tokens.audience in brokertest's config.
const audience = "https://api.example.com"

// newBroker starts a broker with the kakao emulator only; maxAge is its
// keys.jwks_max_age (the JWKS Cache-Control max-age).
func newBroker(t *testing.T, maxAge time.Duration) *brokertest.Env {
	t.Helper()
	return brokertest.New(t, brokertest.Options{
		Providers: []string{"kakao"}, AccessTTL: 10 * time.Minute, MaxAge: maxAge,
	})
}

// counter is an http.RoundTripper that counts JWKS requests, can delay
// them and can replace the Cache-Control of their answers.
type counter struct {
	jwks     atomic.Int64
	notMod   atomic.Int64 // 304 answers among them
	delay    time.Duration
	cacheCtl string // when set, replaces the JWKS answer's Cache-Control
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	isJWKS := strings.HasSuffix(req.URL.Path, "/jwks.json")
	if isJWKS {
		c.jwks.Add(1)
		time.Sleep(c.delay)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && isJWKS {
		if resp.StatusCode == http.StatusNotModified {
			c.notMod.Add(1)
		}
		if c.cacheCtl != "" {
			resp.Header.Set("Cache-Control", c.cacheCtl)
		}
	}
	return resp, err
}

// newVerifier is a verifier of env's tokens on env's clock, fetching
// through c.
func newVerifier(t *testing.T, env *brokertest.Env, c *counter) *verify.Verifier {
	t.Helper()
	v, err := verify.NewWithConfig(context.Background(), verify.Config{
		Issuer: env.URL, Audience: audience, Now: env.Clock.Now,
		HTTPClient: &http.Client{Transport: c, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatalf("verify.NewWithConfig: %v", err)
	}
	return v
}

// session is a signed-in user of env; accessToken asks the broker for an
// access token the way a browser does (POST /auth/token with the refresh
// cookie) and keeps the rotated refresh token.
type session struct {
	env     *brokertest.Env
	user    string // the user id: the tokens' sub
	refresh string
}

func newSession(t *testing.T, env *brokertest.Env) *session {
	t.Helper()
	user := env.NewUser(t, "kakao", "1")
	tok, _ := env.NewSession(t, user)
	return &session{env: env, user: user, refresh: tok}
}

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
		t.Fatalf("POST /auth/token: got status %d (%s), want 200", resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("POST /auth/token: body %s (%v)", body, err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "refresh_token" && c.Value != "" {
			s.refresh = c.Value
		}
	}
	return tr.AccessToken
}

// brokerSigned signs claims with the broker's active key (header alg
// RS256, typ at+jwt, its kid): what the broker would issue with those
// claims.
func brokerSigned(t *testing.T, env *brokertest.Env, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := env.Keys.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// goodClaims are claims the broker would issue at now.
func goodClaims(env *brokertest.Env, now time.Time) map[string]any {
	return map[string]any{
		"iss": env.URL, "sub": "user-1", "aud": audience, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(), "jti": "jti-1", "sid": "sid-1", "idp": "kakao",
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// parts splits a compact token and decodes its header.
func parts(t *testing.T, tok string) (p []string, header map[string]any) {
	t.Helper()
	p = strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("token %q: got %d segments, want 3", tok, len(p))
	}
	b, err := base64.RawURLEncoding.DecodeString(p[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &header); err != nil {
		t.Fatal(err)
	}
	return p, header
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	_, h := parts(t, tok)
	kid, _ := h["kid"].(string)
	return kid
}

// flipChar changes the middle character of segment i to another
// base64url character.
func flipChar(tok string, i int) string {
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

// withHeader puts header over tok's claims and signs with sign (nil: an
// empty signature; keepSig: tok's own signature).
func withHeader(tok string, header map[string]any, sign func(in []byte) []byte) string {
	p := strings.Split(tok, ".")
	in := b64(header) + "." + p[1]
	if sign == nil {
		return in + "."
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
}

func keepSig(tok string) func([]byte) []byte {
	return func([]byte) []byte {
		b, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[2])
		return b
	}
}

func rsaSigner(t *testing.T, key *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func hmacSigner(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

// hmacSecrets are the encodings of an RSA public key that an
// algorithm-confusion attacker tries as an HS256 secret.
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

var (
	foreignOnce sync.Once
	foreignKey  *rsa.PrivateKey
)

// foreign is an RSA key that is not the broker's.
func foreign(t *testing.T) *rsa.PrivateKey {
	foreignOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		foreignKey = k
	})
	return foreignKey
}

// setSegment replaces segment i of tok.
func setSegment(tok string, i int, s string) string {
	p := strings.Split(tok, ".")
	p[i] = s
	return strings.Join(p, ".")
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// trailingBitSibling changes the unused low bit of the last character of
// segment i: a lenient decoder reads the same bytes, a strict one refuses.
func trailingBitSibling(t *testing.T, tok string, i int) string {
	t.Helper()
	s := strings.Split(tok, ".")[i]
	if len(s)%4 == 0 {
		t.Fatalf("segment %d has %d characters: no unused bits", i, len(s))
	}
	last := strings.IndexByte(b64url, s[len(s)-1])
	return setSegment(tok, i, s[:len(s)-1]+string(b64url[last^1]))
}

// reencode re-encodes segment i of tok with enc.
func reencode(t *testing.T, tok string, i int, enc *base64.Encoding) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	return setSegment(tok, i, enc.EncodeToString(b))
}
