package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// go-oidc's verifier, configured exactly as docs/integrating.md shows a
// Go service: the broker's issuer, the remote JWKS, the API's audience as
// ClientID, RS256 only. One key set serves every verifier, as it would in
// a service; only the expectation (issuer, audience) differs per case.
func TestGoOIDCVerifier(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx := context.Background()
	keySet := oidc.NewRemoteKeySet(ctx, env.URL+"/.well-known/jwks.json")

	var mu sync.Mutex
	verifiers := map[[2]string]*oidc.IDTokenVerifier{}
	verifierFor := func(issuer, aud string) *oidc.IDTokenVerifier {
		mu.Lock()
		defer mu.Unlock()
		k := [2]string{issuer, aud}
		if v, ok := verifiers[k]; ok {
			return v
		}
		v := oidc.NewVerifier(issuer, keySet, &oidc.Config{
			ClientID:             aud,
			SupportedSigningAlgs: []string{"RS256"},
			Now:                  env.Clock.Now,
		})
		verifiers[k] = v
		return v
	}
	verifierSuite(t, env, func(ctx context.Context, tok, issuer, aud string) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		idt, err := verifierFor(issuer, aud).Verify(ctx, tok)
		if err != nil {
			return err
		}
		// What a service reads from the token: sub and the broker's claims.
		var claims struct {
			Sid string `json:"sid"`
			IDP string `json:"idp"`
			JTI string `json:"jti"`
		}
		if err := idt.Claims(&claims); err != nil {
			return err
		}
		if idt.Subject == "" || claims.Sid == "" || claims.IDP != "kakao" || claims.JTI == "" {
			return fmt.Errorf("verified token lacks sub/sid/idp/jti: sub %q %+v", idt.Subject, claims)
		}
		return nil
	})
}

// jwxVerifier checks the broker's access tokens with jwx's JWKS cache,
// refetching the JWKS when a token names a kid the cache lacks.
type jwxVerifier struct {
	cache            *jwk.Cache
	jwksURL          string
	keys             jwk.Set
	issuer, audience string
	now              func() time.Time

	mu        sync.Mutex
	refetched time.Time
}

func newJWXVerifier(ctx context.Context, issuer, audience string) (*jwxVerifier, error) {
	v := &jwxVerifier{cache: jwk.NewCache(ctx), jwksURL: issuer + "/.well-known/jwks.json", issuer: issuer, audience: audience, now: time.Now}
	if err := v.cache.Register(v.jwksURL, jwk.WithMinRefreshInterval(time.Minute)); err != nil {
		return nil, err
	}
	if _, err := v.cache.Refresh(ctx, v.jwksURL); err != nil {
		return nil, err // the broker is unreachable at start
	}
	v.keys = jwk.NewCachedSet(v.cache, v.jwksURL)
	return v, nil
}

func (v *jwxVerifier) Verify(ctx context.Context, raw string) (jwt.Token, error) {
	if msg, err := jws.Parse([]byte(raw)); err == nil && len(msg.Signatures()) == 1 {
		kid := msg.Signatures()[0].ProtectedHeaders().KeyID()
		if _, known := v.keys.LookupKeyID(kid); !known && kid != "" {
			v.mu.Lock()
			if v.now().Sub(v.refetched) > 10*time.Second {
				v.refetched = v.now()
				_, _ = v.cache.Refresh(ctx, v.jwksURL) // on failure the cached keys stay
			}
			v.mu.Unlock()
		}
	}
	return jwt.Parse([]byte(raw),
		jwt.WithKeySet(v.keys), // uses the key's alg (RS256); refuses none and HS256
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(v.now)),
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
	)
}

// The jwx verifier of docs/integrating.md, as written (the doc's code is
// this file's, checked below), through every case of the verifier suite:
// a key rotation included, where only its refetch on an unknown kid keeps
// the new key's tokens from being refused for a minute. The suite's cases
// with another issuer or audience get a verifier of their own.
func TestJWXVerifier(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("verify_test.go")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(src), "// jwxVerifier checks")
	end := strings.Index(string(src), "\n// The jwx verifier of docs")
	doc, err := os.ReadFile("../docs/integrating.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), string(src[start:end])) {
		t.Fatal("the jwx snippet of docs/integrating.md differs from jwxVerifier in e2e/verify_test.go")
	}

	env := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var mu sync.Mutex
	verifiers := map[[2]string]*jwxVerifier{}
	verifierFor := func(issuer, aud string) (*jwxVerifier, error) {
		mu.Lock()
		defer mu.Unlock()
		k := [2]string{issuer, aud}
		if v, ok := verifiers[k]; ok {
			return v, nil
		}
		// Another issuer's JWKS is the broker's too (the suite only changes
		// what the verifier expects).
		v, err := newJWXVerifier(ctx, env.URL, aud)
		if err != nil {
			return nil, err
		}
		v.issuer, v.now = issuer, env.Clock.Now
		verifiers[k] = v
		return v, nil
	}
	verifierSuite(t, env, func(ctx context.Context, tok, issuer, aud string) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		v, err := verifierFor(issuer, aud)
		if err != nil {
			return err
		}
		_, err = v.Verify(ctx, tok)
		return err
	})
}
