package providers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Options configure every provider of a Registry.
type Options struct {
	// RedirectBase is the broker's issuer; each provider's redirect_uri is
	// RedirectBase + "/auth/callback/" + name.
	RedirectBase string
	// HTTPClient is the base client for provider calls. Optional: its
	// Transport and Timeout are used, but redirects are never followed, no
	// cookie jar is kept and bodies are capped at 1 MiB whatever it says.
	HTTPClient *http.Client
	// Timeout bounds each provider call (token, userinfo, JWKS, discovery,
	// revoke). Default 10s.
	Timeout time.Duration
	// Now is the clock for id_token exp/iat checks and the JWKS refetch
	// cooldown. Default time.Now.
	Now func() time.Time
	// Logger gets operational events (discovery or JWKS failures), never
	// tokens, codes, bodies or personal data. Default: discard.
	Logger *slog.Logger
}

// Preparer is implemented by every provider of this package. Prepare does
// the network setup a provider needs before AuthCodeURL can be built (OIDC
// discovery for google and oidc without auth_url); for the others it returns
// nil at once. The login handler should call it and render its *Error: when
// setup has failed, AuthCodeURL returns "". A failed setup is retried on the
// next call.
type Preparer interface {
	Prepare(ctx context.Context) error
}

// ErrRevokeUnsupported is returned by Revoke when the provider has no
// revocation endpoint (an oidc issuer without revocation_endpoint and no
// revoke_url, an oauth2 provider without revoke_url). There is nothing to
// retry.
var ErrRevokeUnsupported = errors.New("provider has no revocation endpoint")

// Registry holds the configured providers. It is built once at boot and is
// safe for concurrent use.
type Registry struct {
	list   []Provider
	byName map[string]Provider
}

// NewRegistry validates every entry, reporting every problem at once (see
// ConfigError), and builds the providers. It makes no network call:
// discovery and JWKS are fetched on first use.
func NewRegistry(cfgs []Config, opts Options) (*Registry, error) {
	if err := validate(cfgs, opts); err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &httpx{
		client:  newClient(opts.HTTPClient),
		timeout: opts.Timeout,
		now:     opts.Now,
		log:     opts.Logger,
	}
	redirectBase := strings.TrimSuffix(opts.RedirectBase, "/")

	r := &Registry{byName: make(map[string]Provider, len(cfgs))}
	for _, c := range cfgs {
		b := newBase(c, h, redirectBase)
		var p Provider
		switch c.Type {
		case TypeKakao:
			p = newKakao(c, b)
		case TypeNaver:
			p = newNaver(c, b)
		case TypeGoogle:
			p = newGoogle(c, b)
		case TypeOIDC:
			p = newOIDC(c, b)
		case TypeOAuth2:
			p = newOAuth2(c, b)
		}
		r.list = append(r.list, p)
		r.byName[c.Name] = p
	}
	return r, nil
}

// Get returns the provider named name.
func (r *Registry) Get(name string) (Provider, bool) {
	p, ok := r.byName[name]
	return p, ok
}

// All returns the providers in config order.
func (r *Registry) All() []Provider {
	return append([]Provider(nil), r.list...)
}
