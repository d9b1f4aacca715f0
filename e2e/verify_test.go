package e2e

import (
	"context"
	"fmt"
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

// jwx/v2 with a jwk.Cache registered on the JWKS URL. jwx's cache refreshes
// on its own schedule (the JWKS Cache-Control max-age, at least
// MinRefreshInterval); it does not refetch when a token names a kid it has
// not seen, so the verifier does that itself (once per unknown kid, as
// docs/integrating.md shows): that is what makes a rotation seamless even
// for a verifier whose cache is younger than the new key's publication.
func TestJWXVerifier(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	jwksURL := env.URL + "/.well-known/jwks.json"
	cache := jwk.NewCache(ctx)
	if err := cache.Register(jwksURL, jwk.WithMinRefreshInterval(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Refresh(ctx, jwksURL); err != nil {
		t.Fatalf("first JWKS fetch: %v", err)
	}
	cachedSet := jwk.NewCachedSet(cache, jwksURL)

	parse := func(tok, issuer, aud string) error {
		_, err := jwt.Parse([]byte(tok),
			jwt.WithKeySet(cachedSet),
			jwt.WithValidate(true),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(aud),
			jwt.WithClock(jwt.ClockFunc(env.Clock.Now)),
		)
		return err
	}

	var mu sync.Mutex
	refetched := map[string]bool{}
	// refetchOnUnknownKid refreshes the cache when tok names a kid that the
	// cached set lacks, at most once per kid (a real service would also
	// rate-limit the refetches of forged kids).
	refetchOnUnknownKid := func(ctx context.Context, tok string) {
		msg, err := jws.Parse([]byte(tok))
		if err != nil || len(msg.Signatures()) != 1 {
			return // jwt.Parse reports it
		}
		kid := msg.Signatures()[0].ProtectedHeaders().KeyID()
		if kid == "" {
			return
		}
		if _, ok := cachedSet.LookupKeyID(kid); ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if refetched[kid] {
			return
		}
		refetched[kid] = true
		// Shows why this function exists: the cached set alone refuses.
		t.Logf("jwx: kid %s not in the cached JWKS; the cached set alone says %v; refetching", kid, parse(tok, env.URL, audience))
		if _, err := cache.Refresh(ctx, jwksURL); err != nil {
			t.Logf("JWKS refetch for kid %s: %v", kid, err)
		}
	}
	verifierSuite(t, env, func(ctx context.Context, tok, issuer, aud string) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		refetchOnUnknownKid(ctx, tok)
		return parse(tok, issuer, aud)
	})
}
