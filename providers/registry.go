package providers

import (
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

// NewRegistry decodes and validates every entry with its preset, reporting
// every problem at once (see ConfigError), and builds the providers. It
// makes no network call: discovery and JWKS are fetched on first use.
func NewRegistry(cfgs []Config, opts Options) (*Registry, error) {
	pcs, err := decodeAll(cfgs, opts.RedirectBase)
	if err != nil {
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

	r := &Registry{byName: make(map[string]Provider, len(pcs))}
	for _, pc := range pcs {
		s := pc.settings()
		p := pc.build(newBase(s, presets[s.Type], h, redirectBase))
		r.list = append(r.list, p)
		r.byName[s.Name] = p
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

// Receivers returns the providers that take notifications at
// /auth/webhooks/{hook}, in config order.
func (r *Registry) Receivers(hook string) []NotificationReceiver {
	var out []NotificationReceiver
	for _, p := range r.list {
		if n, ok := p.(NotificationReceiver); ok && n.Hook() == hook {
			out = append(out, n)
		}
	}
	return out
}
