package verify_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/keys"
	"github.com/socialbroker/broker/verify"
)

// Every token a verifier must refuse, made from a real broker's fresh
// token (or signed with the broker's real key when only the claims are
// wrong), with the reason Verify must give.
func TestBrokerTokens(t *testing.T) {
	t.Parallel()
	env := newBroker(t, time.Minute)
	var c counter
	v := newVerifier(t, env, &c)
	sess := newSession(t, env)

	// A fresh token whose signature has a '-' or '_', so that its
	// standard-base64 spelling differs.
	var fresh string
	for range 20 {
		fresh = sess.accessToken(t)
		if strings.ContainsAny(strings.Split(fresh, ".")[2], "-_") {
			break
		}
	}
	p, hdr := parts(t, fresh)
	if hdr["alg"] != "RS256" || hdr["typ"] != "at+jwt" {
		t.Fatalf("broker's token header: got %v, want alg RS256, typ at+jwt", hdr)
	}
	kid := kidOf(t, fresh)
	pub, ok := env.Keys.PublicKey(kid)
	if !ok {
		t.Fatalf("kid %s: not published", kid)
	}
	now := env.Clock.Now()
	good := goodClaims(env, now)
	header := func(kv ...any) map[string]any {
		return with(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": kid}, kv...)
	}

	type tc struct {
		name  string
		token string
		want  error // nil: accepted
	}
	cases := []tc{
		{"fresh", fresh, nil},
		{"broker-signed, aud an array holding ours", brokerSigned(t, env, with(good, "aud", []string{"https://other.example", audience})), nil},
		{"broker-signed, exp 29 s ago (within the leeway)", brokerSigned(t, env, with(good, "exp", now.Add(-29*time.Second).Unix())), nil},
		{"broker-signed, nbf in 29 s (within the leeway)", brokerSigned(t, env, with(good, "nbf", now.Add(29*time.Second).Unix())), nil},

		{"altered payload (sub changed, signature kept)", setSegment(fresh, 1, b64(with(good, "sub", "someone-else"))), verify.ErrSignature},
		{"flipped claims character", flipChar(fresh, 1), verify.ErrSignature},
		{"flipped signature character", flipChar(fresh, 2), verify.ErrSignature},
		{"flipped header character", flipChar(fresh, 0), verify.ErrInvalidToken}, // which check refuses depends on the character
		{"signature removed", p[0] + "." + p[1] + ".", verify.ErrMalformed},
		{"alg none, no signature", withHeader(fresh, header("alg", "none"), nil), verify.ErrMalformed}, // an empty segment is not a canonical JWS
		{"alg None, signature kept", withHeader(fresh, header("alg", "None"), keepSig(fresh)), verify.ErrAlgorithm},
		{"alg RS384, signature kept", withHeader(fresh, header("alg", "RS384"), keepSig(fresh)), verify.ErrAlgorithm},
		{"alg PS256 by a foreign key", withHeader(fresh, header("alg", "PS256"), rsaSigner(t, foreign(t))), verify.ErrAlgorithm},
		{"typ missing, signature kept", withHeader(fresh, header("typ", nil), keepSig(fresh)), verify.ErrType},
		{"typ JWT, signature kept", withHeader(fresh, header("typ", "JWT"), keepSig(fresh)), verify.ErrType},
		{"typ application/at+jwt, signature kept", withHeader(fresh, header("typ", "application/at+jwt"), keepSig(fresh)), verify.ErrType},
		{"typ a number", withHeader(fresh, header("typ", 1), keepSig(fresh)), verify.ErrMalformed},
		{"crit header", withHeader(fresh, header("crit", []string{"exp"}), keepSig(fresh)), verify.ErrMalformed},
		{"no kid", withHeader(fresh, header("kid", nil), keepSig(fresh)), verify.ErrUnknownKey},
		{"foreign key with our kid", withHeader(fresh, header(), rsaSigner(t, foreign(t))), verify.ErrSignature},
		{"foreign key, its own kid", withHeader(fresh, header("kid", "not-ours"), rsaSigner(t, foreign(t))), verify.ErrUnknownKey},

		{"broker-signed, another aud", brokerSigned(t, env, with(good, "aud", "https://other-api.example")), verify.ErrAudience},
		{"broker-signed, aud missing", brokerSigned(t, env, with(good, "aud", nil)), verify.ErrAudience},
		{"broker-signed, another iss", brokerSigned(t, env, with(good, "iss", "https://other-issuer.example")), verify.ErrIssuer},
		{"broker-signed, iss with a trailing slash", brokerSigned(t, env, with(good, "iss", env.URL+"/")), verify.ErrIssuer},
		{"broker-signed, exp 31 s ago", brokerSigned(t, env, with(good, "exp", now.Add(-31*time.Second).Unix())), verify.ErrExpired},
		{"broker-signed, nbf in 31 s", brokerSigned(t, env, with(good, "nbf", now.Add(31*time.Second).Unix())), verify.ErrNotYetValid},
		{"broker-signed, iat in 31 s", brokerSigned(t, env, with(good, "iat", now.Add(31*time.Second).Unix())), verify.ErrNotYetValid},
		{"broker-signed, no exp", brokerSigned(t, env, with(good, "exp", nil)), verify.ErrMissingClaim},
		{"broker-signed, no sub", brokerSigned(t, env, with(good, "sub", nil)), verify.ErrMissingClaim},
		{"broker-signed, no sid", brokerSigned(t, env, with(good, "sid", nil)), verify.ErrMissingClaim},
		{"broker-signed, exp a string", brokerSigned(t, env, with(good, "exp", fmt.Sprint(now.Add(time.Hour).Unix()))), verify.ErrMalformed},
		{"broker-signed, aud a number", brokerSigned(t, env, with(good, "aud", 7)), verify.ErrMalformed},

		// Other spellings of the fresh token: a lenient decoder reads the
		// same bytes and the same valid signature.
		{"newline inserted in the claims", setSegment(fresh, 1, p[1][:10]+"\n"+p[1][10:]), verify.ErrMalformed},
		{"CRLF inserted in the signature", setSegment(fresh, 2, p[2][:64]+"\r\n"+p[2][64:]), verify.ErrMalformed},
		{"signature in standard base64", reencode(t, fresh, 2, base64.RawStdEncoding), verify.ErrMalformed},
		{"signature in padded standard base64", reencode(t, fresh, 2, base64.StdEncoding), verify.ErrMalformed},
		{"signature padded", reencode(t, fresh, 2, base64.URLEncoding), verify.ErrMalformed},
		{"signature's last character with a trailing bit set", trailingBitSibling(t, fresh, 2), verify.ErrMalformed},
		{"leading space", " " + fresh, verify.ErrMalformed},
		{"trailing newline", fresh + "\n", verify.ErrMalformed},
		{"fourth segment", fresh + ".", verify.ErrMalformed},
		{"two segments", p[0] + "." + p[1], verify.ErrMalformed},
		{"empty", "", verify.ErrMalformed},
	}
	if len(p[1])%4 != 0 {
		cases = append(cases,
			tc{"claims padded", reencode(t, fresh, 1, base64.URLEncoding), verify.ErrMalformed},
			tc{"claims' last character with a trailing bit set", trailingBitSibling(t, fresh, 1), verify.ErrMalformed})
	}
	for enc, secret := range hmacSecrets(t, pub) {
		cases = append(cases, tc{"HS256 with the public key (" + enc + ") as secret",
			withHeader(fresh, header("alg", "HS256"), hmacSigner(secret)), verify.ErrAlgorithm})
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := v.Verify(context.Background(), c.token)
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("got %v, want accepted", err)
			case c.want == nil && (claims == nil || claims.Subject == "" || claims.SessionID == ""):
				t.Fatalf("got claims %+v, want sub and sid", claims)
			case c.want != nil && err == nil:
				t.Fatalf("got accepted (claims %+v), want %v", claims, c.want)
			case c.want != nil && (!errors.Is(err, c.want) || !errors.Is(err, verify.ErrInvalidToken)):
				t.Fatalf("got %v, want %v (and ErrInvalidToken)", err, c.want)
			case c.want != nil && claims != nil:
				t.Fatalf("got claims %+v with the error, want nil", claims)
			}
		})
	}
	// Nothing above was worth a JWKS refetch: the only unknown kid came
	// within the cooldown of the first fetch.
	if got := c.jwks.Load(); got != 1 {
		t.Errorf("JWKS fetches: got %d, want 1 (New's)", got)
	}

	// The fresh token's claims, as a service reads them.
	claims, err := v.Verify(context.Background(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Issuer != env.URL || claims.IDP != "kakao" || claims.JTI == "" || claims.KeyID != kid ||
		len(claims.Audience) != 1 || claims.Audience[0] != audience || !claims.Expiry.Equal(claims.IssuedAt.Add(10*time.Minute)) {
		t.Errorf("claims: got %+v, want iss %s, idp kakao, a jti, kid %s, aud [%s], exp = iat + 10m", claims, env.URL, kid, audience)
	}
	if claims.Raw["sub"] != claims.Subject || claims.Raw["sid"] != claims.SessionID {
		t.Errorf("raw claims: got %v, want sub %q and sid %q", claims.Raw, claims.Subject, claims.SessionID)
	}

	// Past exp + leeway on the broker's clock, the fresh token is refused.
	env.Clock.Advance(10*time.Minute + verify.Leeway - time.Second)
	if _, err := v.Verify(context.Background(), fresh); err != nil {
		t.Errorf("1 s before exp + leeway: got %v, want accepted", err)
	}
	env.Clock.Advance(time.Second)
	if _, err := v.Verify(context.Background(), fresh); !errors.Is(err, verify.ErrExpired) {
		t.Errorf("at exp + leeway: got %v, want %v", err, verify.ErrExpired)
	}
}

// New refuses an issuer that the discovery document does not name exactly.
func TestNewChecksIssuer(t *testing.T) {
	t.Parallel()
	env := newBroker(t, time.Minute)
	for _, issuer := range []string{env.URL + "/", strings.Replace(env.URL, "127.0.0.1", "localhost", 1)} {
		_, err := verify.New(context.Background(), issuer, audience)
		if err == nil || !strings.Contains(err.Error(), "issuer") {
			t.Errorf("New(%q): got %v, want an issuer mismatch", issuer, err)
		}
	}
	if _, err := verify.New(context.Background(), env.URL, audience); err != nil {
		t.Errorf("New(%q): got %v, want nil", env.URL, err)
	}
}

// After a key rotation, a verifier whose cached JWKS predates the new key
// (here: one that was served with a day's max-age, as a caching proxy
// might) refetches the JWKS for the new kid, once, however many requests
// bring it at the same moment; tokens of the old key still verify.
func TestRotationRefetchesUnknownKid(t *testing.T) {
	t.Parallel()
	env := newBroker(t, time.Minute)
	c := &counter{cacheCtl: "public, max-age=86400", delay: 200 * time.Millisecond}
	v := newVerifier(t, env, c)
	honest := &counter{} // a verifier that gets the broker's own max-age
	vh := newVerifier(t, env, honest)
	sess := newSession(t, env)
	before := sess.accessToken(t)
	for _, v := range []*verify.Verifier{v, vh} {
		if _, err := v.Verify(context.Background(), before); err != nil {
			t.Fatalf("token before rotation: got %v, want accepted", err)
		}
	}

	oldKid := kidOf(t, before)
	newKid, _, err := env.Keys.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(keys.PublishDelay + env.Config.Keys.JWKSMaxAge + time.Second)
	if err := env.Keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := sess.accessToken(t)
	if got := kidOf(t, after); got != newKid || got == oldKid {
		t.Fatalf("token after activation: got kid %s, want the new key %s (old %s)", got, newKid, oldKid)
	}

	// 16 requests with the new kid at once: one refetch serves them all.
	var wg sync.WaitGroup
	errs := make([]error, 16)
	start := make(chan struct{})
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			claims, err := v.Verify(context.Background(), after)
			if err == nil && claims.KeyID != newKid {
				err = fmt.Errorf("claims name kid %s", claims.KeyID)
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d with the new kid: got %v, want accepted", i, err)
		}
	}
	if got := c.jwks.Load(); got != 2 {
		t.Errorf("JWKS fetches: got %d, want 2 (New's, then one for the new kid)", got)
	}
	if _, err := v.Verify(context.Background(), before); err != nil {
		t.Errorf("old key's token after the rotation: got %v, want accepted", err)
	}

	// The verifier that honours the broker's max-age had refetched anyway:
	// its cache expired before the new key signed.
	if _, err := vh.Verify(context.Background(), after); err != nil {
		t.Errorf("max-age verifier, new key's token: got %v, want accepted", err)
	}
	if got := honest.jwks.Load(); got != 2 {
		t.Errorf("max-age verifier's JWKS fetches: got %d, want 2", got)
	}
}

// Tokens naming made-up kids cost at most one JWKS fetch per cooldown, even
// when they come all at once; valid tokens keep verifying meanwhile.
func TestUnknownKidCooldown(t *testing.T) {
	t.Parallel()
	env := newBroker(t, time.Hour)
	c := &counter{}
	v := newVerifier(t, env, c)
	good := newSession(t, env).accessToken(t)
	hdr := map[string]any{"alg": "RS256", "typ": "at+jwt"}
	sign := rsaSigner(t, foreign(t))
	garbage := make([]string, 50)
	for i := range garbage {
		garbage[i] = withHeader(good, with(hdr, "kid", fmt.Sprintf("forged-%d", i)), sign)
	}
	storm := func() {
		var wg sync.WaitGroup
		for _, tok := range garbage {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verify.ErrUnknownKey) {
					t.Errorf("forged kid: got %v, want %v", err, verify.ErrUnknownKey)
				}
			}()
		}
		wg.Wait()
		if _, err := v.Verify(context.Background(), good); err != nil {
			t.Errorf("valid token during the storm: got %v, want accepted", err)
		}
	}

	steps := []struct {
		advance time.Duration
		want    int64 // JWKS fetches in total after the storm
	}{
		{0, 1},                      // within the cooldown of New's fetch
		{verify.RefetchCooldown, 2}, // one refetch for 50 unknown kids
		{verify.RefetchCooldown - time.Second, 2}, // still cooling down
		{time.Second, 3},
	}
	for i, s := range steps {
		env.Clock.Advance(s.advance)
		storm()
		if got := c.jwks.Load(); got != s.want {
			t.Errorf("step %d (+%s): got %d JWKS fetches, want %d", i, s.advance, got, s.want)
		}
	}
}

// The JWKS is fetched again once its Cache-Control max-age (the broker's
// keys.jwks_max_age) has passed, not before; the refetch is conditional
// (If-None-Match), and a 304 keeps the keys.
func TestCacheControl(t *testing.T) {
	t.Parallel()
	env := newBroker(t, 5*time.Minute)
	c := &counter{}
	v := newVerifier(t, env, c)
	tok := newSession(t, env).accessToken(t)
	steps := []struct {
		advance time.Duration
		want    int64
	}{
		{0, 1},
		{5*time.Minute - time.Second, 1},
		{time.Second, 2}, // max-age reached
		{4 * time.Minute, 2},
		{time.Minute, 3},
	}
	for i, s := range steps {
		env.Clock.Advance(s.advance)
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("step %d: got %v, want accepted", i, err)
		}
		if got := c.jwks.Load(); got != s.want {
			t.Errorf("step %d (+%s): got %d JWKS fetches, want %d", i, s.advance, got, s.want)
		}
	}
	if got := c.notMod.Load(); got != 2 {
		t.Errorf("304 answers: got %d, want 2 (every refetch was conditional)", got)
	}
}

// The middleware in front of a handler, against the broker's tokens.
func TestMiddlewareWithBroker(t *testing.T) {
	t.Parallel()
	env := newBroker(t, time.Minute)
	v := newVerifier(t, env, &counter{})
	tok := newSession(t, env).accessToken(t)
	var seen *verify.Claims
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verify.ClaimsFrom(r.Context())
		if !ok {
			t.Error("ClaimsFrom: got no claims, want the token's")
		}
		seen = c
	}))
	rec := serve(h, "Bearer "+tok)
	if rec.Code != 200 || seen == nil || seen.Subject == "" || seen.IDP != "kakao" {
		t.Fatalf("valid token: got status %d, claims %+v; want 200 and the token's claims", rec.Code, seen)
	}
	seen = nil
	rec = serve(h, "Bearer "+flipChar(tok, 2))
	if got, want := rec.Header().Get("WWW-Authenticate"), `Bearer error="invalid_token"`; rec.Code != 401 || got != want || seen != nil {
		t.Fatalf("altered token: got status %d, WWW-Authenticate %q; want 401, %q, handler not called", rec.Code, got, want)
	}
}
