package providers

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// jwksCooldown is the least time between two fetches of one provider's JWKS
// (contract §8): a token naming an unknown kid triggers at most one refetch
// per window, however many such tokens arrive.
const jwksCooldown = 10 * time.Second

// sigAlgs are the id_token algorithms we accept. Everything else (none,
// HS256 keyed with a public key, …) is refused while parsing.
var sigAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

var sigAlgNames = []string{string(jose.RS256), string(jose.ES256)}

var (
	errJWKSCooldown = errors.New("no key in the cached JWKS verifies the token and a refetch is limited to once per 10s")
	errNoKey        = errors.New("no key in the provider's JWKS verifies the signature")
)

// keySet is an oidc.KeySet that caches a provider's JWKS and refetches it
// when a token names a kid it does not hold, at most once per jwksCooldown,
// with concurrent refetches collapsed into one. Only keys from the JWKS are
// ever used: jwk, jku and x5u headers of the token are ignored.
type keySet struct {
	h   *httpx
	url func(context.Context) (string, error) // resolves the JWKS URL (may need discovery)

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched bool      // a fetch has been attempted
	last    time.Time // when the last fetch started

	sf singleflight.Group
}

var _ oidc.KeySet = (*keySet)(nil)

// fetchFailure carries a JWKS fetch failure out of go-oidc, which flattens
// KeySet errors with %v, so that an outage maps to a provider error rather
// than to an invalid token.
type fetchFailure struct{ err *Error }

type fetchFailureKey struct{}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, sigAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	hdr := jws.Signatures[0].Protected
	kid, alg := hdr.KeyID, hdr.Algorithm

	k.mu.Lock()
	keys, fetched := k.keys, k.fetched
	k.mu.Unlock()
	if fetched {
		payload, known, err := verifyWith(jws, keys, kid, alg)
		if err == nil || known {
			return payload, err
		}
	}
	keys, cooled, err := k.refresh(ctx)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			if ff, ok := ctx.Value(fetchFailureKey{}).(*fetchFailure); ok {
				ff.err = pe
			}
		}
		return nil, err
	}
	payload, _, err := verifyWith(jws, keys, kid, alg)
	if err != nil && cooled {
		return nil, errJWKSCooldown
	}
	return payload, err
}

// verifyWith tries the keys matching kid (all keys when the token has none).
// known reports that a key with that kid exists, in which case a failed
// signature is final and no refetch is due.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid, alg string) (payload []byte, known bool, err error) {
	for i := range keys {
		key := &keys[i]
		// A token's kid selects its key; keys published without a kid are
		// candidates for any token.
		if kid != "" && key.KeyID != kid && key.KeyID != "" {
			continue
		}
		if kid != "" && key.KeyID == kid {
			known = true
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if key.Algorithm != "" && key.Algorithm != alg {
			continue
		}
		if p, err := jws.Verify(key.Key); err == nil {
			return p, known, nil
		}
	}
	return nil, known, errNoKey
}

// refresh fetches the JWKS unless one was fetched less than jwksCooldown
// ago; then it returns the cached keys with cooled set. Concurrent callers
// share one fetch; a caller whose context ends stops waiting without
// cancelling the others' fetch.
func (k *keySet) refresh(ctx context.Context) (keys []jose.JSONWebKey, cooled bool, err error) {
	type result struct {
		keys   []jose.JSONWebKey
		cooled bool
	}
	ch := k.sf.DoChan("jwks", func() (any, error) {
		now := k.h.now()
		k.mu.Lock()
		if k.fetched && now.Sub(k.last) < jwksCooldown {
			keys := k.keys
			k.mu.Unlock()
			return result{keys: keys, cooled: true}, nil
		}
		k.fetched, k.last = true, now
		k.mu.Unlock()

		keys, err := k.fetch(context.WithoutCancel(ctx))
		if err != nil {
			k.h.log.Warn("provider jwks fetch failed", slog.String("error", err.Error()))
			return nil, err
		}
		k.mu.Lock()
		k.keys = keys
		k.mu.Unlock()
		k.h.log.Debug("provider jwks fetched", slog.Int("keys", len(keys)))
		return result{keys: keys}, nil
	})
	select {
	case <-ctx.Done():
		return nil, false, transportError(ctx, nil, "jwks", ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, false, r.Err
		}
		res := r.Val.(result)
		return res.keys, res.cooled, nil
	}
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	u, err := k.url(ctx)
	if err != nil {
		return nil, err
	}
	body, perr := k.h.getJSON(ctx, "jwks", u, "")
	if perr != nil {
		return nil, perr
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, &Error{Code: CodeProviderError, Cause: fmt.Errorf("jwks: %w", err)}
	}
	return keys, nil
}

// parseJWKS keeps the RSA and EC public keys of a JWK set and skips the
// rest (symmetric keys, unknown key types).
func parseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, errors.New("malformed JWK set")
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := json.Unmarshal(raw, &key); err != nil {
			continue
		}
		switch key.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
		case *rsa.PrivateKey, *ecdsa.PrivateKey:
			key = key.Public()
		default:
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable signing keys in JWK set")
	}
	return keys, nil
}
