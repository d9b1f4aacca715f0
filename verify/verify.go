// Package verify checks the broker's access tokens in a Go service,
// offline: the signature against the broker's published JWKS, then the
// header and the claims of contract §5.
//
// A token is accepted only when it is a compact JWS in canonical base64url
// (three segments of [A-Za-z0-9_-], no padding, no whitespace, no
// non-zero trailing bits), its header says alg RS256 and typ at+jwt and
// names the kid of a published RSA key, the signature verifies, iss is the
// broker's issuer, aud contains the service's audience, exp has not passed
// and nbf and iat have come (both with a 30 s leeway), and sub and sid are
// present.
//
// The JWKS comes from the issuer's discovery document. It is cached for
// its Cache-Control max-age (bounded to [1 min, 24 h]) and refetched
// early when a token names a kid the cache lacks, at most once per 10 s;
// concurrent callers share one fetch. When a refetch fails, the cached
// keys stay in use.
//
// The package uses only the standard library, so importing it adds no
// dependency to a service.
package verify

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/socialbroker/broker/internal/compact"
)

const (
	// Leeway is the clock difference tolerated for exp, nbf and iat.
	Leeway = 30 * time.Second
	// RefetchCooldown is the least time between two JWKS fetches caused by
	// tokens naming unknown kids (or retrying after a failed fetch).
	RefetchCooldown = 10 * time.Second
	// MinCacheTTL and MaxCacheTTL bound how long a fetched JWKS is used
	// before the next token makes the verifier fetch it again, whatever
	// its Cache-Control says. DefaultCacheTTL applies when it says nothing.
	MinCacheTTL     = time.Minute
	MaxCacheTTL     = 24 * time.Hour
	DefaultCacheTTL = 5 * time.Minute

	maxTokenSize    = 16 << 10 // bytes of a compact token
	maxDocumentSize = 1 << 20  // bytes of the discovery document or the JWKS
	fetchTimeout    = 30 * time.Second
)

// Config configures a Verifier. Issuer and Audience are required.
type Config struct {
	// Issuer is the broker's issuer exactly as in its config (and in the
	// iss claim), such as https://auth.example.com.
	Issuer string
	// Audience is this service's entry of the broker's tokens.audience.
	Audience string
	// HTTPClient fetches the discovery document and the JWKS. Default: a
	// client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock for exp, nbf, iat and the JWKS cache. Default:
	// time.Now.
	Now func() time.Time
	// Realm, when set, is sent as the realm of the middleware's
	// WWW-Authenticate challenges.
	Realm string
}

// Claims are the verified claims of an access token.
type Claims struct {
	Issuer    string
	Subject   string   // sub: the broker's opaque user id
	Audience  []string // aud, always as a list
	IssuedAt  time.Time
	NotBefore time.Time // zero when the token has no nbf
	Expiry    time.Time
	JTI       string // jti: unique per token
	SessionID string // sid: the broker session
	IDP       string // idp: the provider of the login, such as kakao
	KeyID     string // kid of the key that signed the token
	// Raw holds every claim of the token as decoded JSON (numbers as
	// json.Number), the ones above included.
	Raw map[string]any
}

// Verifier checks access tokens of one issuer for one audience. It is safe
// for concurrent use; create one at startup and share it.
type Verifier struct {
	issuer   string
	audience string
	jwksURI  string
	client   *http.Client
	now      func() time.Time
	realm    string

	mu          sync.Mutex
	keys        map[string]*rsa.PublicKey
	expires     time.Time // when the cached JWKS goes stale
	lastAttempt time.Time // start of the latest JWKS fetch
	etag        string
	inflight    *fetchCall
}

// fetchCall is one JWKS fetch that every caller needing it waits for.
type fetchCall struct {
	done chan struct{}
	err  error
}

// New returns a Verifier for tokens that issuer signs for audience. It
// reads issuer + /.well-known/openid-configuration (whose issuer must be
// issuer, exactly) and the JWKS it names, so a wrong issuer or an
// unreachable broker shows at startup.
func New(ctx context.Context, issuer, audience string) (*Verifier, error) {
	return NewWithConfig(ctx, Config{Issuer: issuer, Audience: audience})
}

// NewWithConfig is New with a client, a clock or a realm.
func NewWithConfig(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("verify: Issuer and Audience are required")
	}
	iu, err := url.Parse(cfg.Issuer)
	if err != nil || (iu.Scheme != "https" && iu.Scheme != "http") || iu.Host == "" || iu.RawQuery != "" || iu.Fragment != "" {
		return nil, fmt.Errorf("verify: issuer %q is not an http(s) URL without query or fragment", cfg.Issuer)
	}
	v := &Verifier{
		issuer: cfg.Issuer, audience: cfg.Audience, client: cfg.HTTPClient, now: cfg.Now, realm: cfg.Realm,
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: 10 * time.Second}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if err := v.discover(ctx, iu.Scheme); err != nil {
		return nil, err
	}
	v.mu.Lock()
	call := v.startFetchLocked(ctx)
	v.mu.Unlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("verify: fetching the JWKS: %w", ctx.Err())
	}
	if call.err != nil {
		return nil, call.err
	}
	return v, nil
}

// discover reads the discovery document and keeps its jwks_uri.
func (v *Verifier) discover(ctx context.Context, issuerScheme string) error {
	u := strings.TrimSuffix(v.issuer, "/") + "/.well-known/openid-configuration"
	resp, body, err := v.get(ctx, u, "")
	if err != nil {
		return fmt.Errorf("verify: discovery: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("verify: discovery: GET %s: status %d", u, resp.StatusCode)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("verify: discovery: %s: %w", u, err)
	}
	if doc.Issuer != v.issuer {
		return fmt.Errorf("verify: discovery: %s says issuer %q, want %q", u, doc.Issuer, v.issuer)
	}
	ju, err := url.Parse(doc.JWKSURI)
	if err != nil || !ju.IsAbs() || ju.Host == "" || (ju.Scheme != "https" && ju.Scheme != "http") {
		return fmt.Errorf("verify: discovery: jwks_uri %q is not an http(s) URL", doc.JWKSURI)
	}
	if issuerScheme == "https" && ju.Scheme != "https" {
		return fmt.Errorf("verify: discovery: jwks_uri %q is not https like the issuer", doc.JWKSURI)
	}
	v.jwksURI = ju.String()
	return nil
}

// get fetches u with a body limit. etag, when set, is sent as
// If-None-Match.
func (v *Verifier) get(ctx context.Context, u, etag string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocumentSize {
		return nil, nil, fmt.Errorf("GET %s: body larger than %d bytes", u, maxDocumentSize)
	}
	return resp, body, nil
}

// Verify checks raw, a compact access token (without "Bearer "), and
// returns its claims. Every refusal wraps ErrInvalidToken and one of the
// more specific errors (ErrMalformed, ErrAlgorithm, ErrType,
// ErrUnknownKey, ErrSignature, ErrIssuer, ErrAudience, ErrExpired,
// ErrNotYetValid, ErrMissingClaim), for errors.Is.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > maxTokenSize {
		return nil, invalid(ErrMalformed, "token longer than %d bytes", maxTokenSize)
	}
	parts, err := compact.Decode(raw)
	if err != nil {
		return nil, invalid(ErrMalformed, "not three canonical base64url segments")
	}
	headerJSON, payload, sig := parts.Header, parts.Payload, parts.Signature

	hdr, err := parseObject(headerJSON)
	if err != nil {
		return nil, invalid(ErrMalformed, "header: %v", err)
	}
	alg, err := stringMember(hdr, "alg")
	if err != nil {
		return nil, invalid(ErrMalformed, "header: %v", err)
	}
	if alg != "RS256" {
		return nil, invalid(ErrAlgorithm, "alg %q, want RS256", alg)
	}
	typ, err := stringMember(hdr, "typ")
	if err != nil {
		return nil, invalid(ErrMalformed, "header: %v", err)
	}
	if typ != "at+jwt" {
		return nil, invalid(ErrType, "typ %q, want at+jwt", typ)
	}
	if _, ok := hdr["crit"]; ok {
		return nil, invalid(ErrMalformed, "header has crit: no extension is understood")
	}
	kid, err := stringMember(hdr, "kid")
	if err != nil {
		return nil, invalid(ErrMalformed, "header: %v", err)
	}
	if kid == "" {
		return nil, invalid(ErrUnknownKey, "header has no kid")
	}

	pub, err := v.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(raw[:strings.LastIndexByte(raw, '.')]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return nil, invalid(ErrSignature, "kid %s", kid)
	}

	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	c.KeyID = kid
	now := v.now()
	switch {
	case c.Issuer != v.issuer:
		return nil, invalid(ErrIssuer, "iss %q, want %q", c.Issuer, v.issuer)
	case !contains(c.Audience, v.audience):
		return nil, invalid(ErrAudience, "aud %q does not contain %q", c.Audience, v.audience)
	case !now.Before(c.Expiry.Add(Leeway)):
		return nil, invalid(ErrExpired, "exp %s, now %s", c.Expiry.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case !c.NotBefore.IsZero() && c.NotBefore.After(now.Add(Leeway)):
		return nil, invalid(ErrNotYetValid, "nbf %s, now %s", c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case c.IssuedAt.After(now.Add(Leeway)):
		return nil, invalid(ErrNotYetValid, "iat %s, now %s", c.IssuedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return c, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
