package verify

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// key returns the published key named kid. It fetches the JWKS again when
// the cache is stale or lacks kid, unless the previous fetch started less
// than RefetchCooldown ago; callers arriving while a fetch runs wait for
// that one instead of starting another.
func (v *Verifier) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	v.mu.Lock()
	now := v.now()
	k, known := v.keys[kid]
	if known && now.Before(v.expires) {
		v.mu.Unlock()
		return k, nil
	}
	call := v.inflight
	if call == nil {
		if now.Sub(v.lastAttempt) < RefetchCooldown {
			v.mu.Unlock()
			if known { // stale, and the latest fetch failed: keep using it
				return k, nil
			}
			return nil, invalid(ErrUnknownKey, "kid %s (JWKS fetched less than %s ago)", kid, RefetchCooldown)
		}
		call = v.startFetchLocked(ctx)
	}
	v.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		if known {
			return k, nil
		}
		return nil, &tokenError{kind: ErrUnknownKey, detail: "kid " + kid + ": waiting for the JWKS", cause: ctx.Err()}
	}
	v.mu.Lock()
	k, ok := v.keys[kid]
	v.mu.Unlock()
	if ok {
		return k, nil
	}
	return nil, &tokenError{kind: ErrUnknownKey, detail: "kid " + kid, cause: call.err}
}

// startFetchLocked starts fetching the JWKS in its own goroutine, so that
// a caller giving up (its context ending) does not fail the fetch for the
// others waiting on it. v.mu is held.
func (v *Verifier) startFetchLocked(ctx context.Context) *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	v.inflight = call
	v.lastAttempt = v.now()
	etag := v.etag
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	go func() {
		defer cancel()
		keys, newETag, ttl, err := v.fetchJWKS(fctx, etag)
		v.mu.Lock()
		if err == nil {
			if keys != nil { // nil: 304 Not Modified, the cached keys stand
				v.keys, v.etag = keys, newETag
			}
			v.expires = v.now().Add(ttl)
		}
		call.err = err
		v.inflight = nil
		v.mu.Unlock()
		close(call.done)
	}()
	return call
}

// fetchJWKS gets the key set: its RSA signing keys by kid, its ETag and
// how long to use it. keys is nil when the server answered 304 to etag.
func (v *Verifier) fetchJWKS(ctx context.Context, etag string) (keys map[string]*rsa.PublicKey, newETag string, ttl time.Duration, err error) {
	resp, body, err := v.get(ctx, v.jwksURI, etag)
	if err != nil {
		return nil, "", 0, fmt.Errorf("verify: JWKS: %w", err)
	}
	ttl = cacheTTL(resp.Header)
	if resp.StatusCode == http.StatusNotModified && etag != "" {
		return nil, etag, ttl, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", 0, fmt.Errorf("verify: JWKS: GET %s: status %d", v.jwksURI, resp.StatusCode)
	}
	keys, err = parseJWKS(body)
	if err != nil {
		return nil, "", 0, fmt.Errorf("verify: JWKS %s: %w", v.jwksURI, err)
	}
	return keys, resp.Header.Get("ETag"), ttl, nil
}

// jwk is the part of a JSON Web Key this package reads.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// parseJWKS keeps the keys that can verify RS256: kty RSA, use sig (or
// none), alg RS256 (or none), a kid, at least 2048 bits. A kid appearing
// twice names no key at all (which of them would be meant?). A set
// without any such key is an error.
func parseJWKS(body []byte) (map[string]*rsa.PublicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, err
	}
	keys := map[string]*rsa.PublicKey{}
	seen := map[string]bool{}
	for _, raw := range set.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil || k.Kid == "" {
			continue
		}
		if seen[k.Kid] {
			delete(keys, k.Kid)
			continue
		}
		seen[k.Kid] = true
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			continue
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 || pub.E < 3 || pub.E%2 == 0 {
			continue
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no RS256 signing key among %d keys", len(set.Keys))
	}
	return keys, nil
}

// cacheTTL is how long a JWKS answer stays fresh: its Cache-Control
// max-age less its Age, within [MinCacheTTL, MaxCacheTTL]; MinCacheTTL
// for no-store or no-cache, DefaultCacheTTL without a max-age.
func cacheTTL(h http.Header) time.Duration {
	ttl, found := time.Duration(0), false
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return MinCacheTTL
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err != nil || secs < 0 {
					return MinCacheTTL // unreadable: as if it said no-cache
				}
				if secs > int64(MaxCacheTTL/time.Second) {
					secs = int64(MaxCacheTTL / time.Second)
				}
				ttl, found = time.Duration(secs)*time.Second, true
			}
		}
	}
	if !found {
		return DefaultCacheTTL
	}
	if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
		ttl -= time.Duration(min(age, int64(MaxCacheTTL/time.Second))) * time.Second
	}
	return min(max(ttl, MinCacheTTL), MaxCacheTTL)
}
