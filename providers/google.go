package providers

import "context"

// googleIssuer is Google's issuer; go-oidc also accepts the legacy
// "accounts.google.com" iss for exactly this issuer.
const googleIssuer = "https://accounts.google.com"

var googleDefaultScopes = []string{"openid", "email", "profile"}

// google is Sign in with Google: the oidc preset with Google's issuer and
// scopes, email_verified honoured, and revocation as Google documents it
// (POST token= to revocation_endpoint, no client credentials).
type google struct {
	*oidcProvider
}

var (
	_ Provider        = (*google)(nil)
	_ IDTokenVerifier = (*google)(nil)
	_ Revoker         = (*google)(nil)
)

func init() {
	register("google", preset{config: func() presetConfig { return &googleConfig{} }, displayName: "Google", pkce: true})
}

// googleConfig is a `type: google` entry: an oidc entry whose issuer
// defaults to Google's.
type googleConfig struct {
	oidcConfig `yaml:",inline"`
}

func (c *googleConfig) check(ck checker) {
	if c.ClientSecret == "" {
		ck.add("client_secret", "required for type google (a web application's client secret)")
	}
	c.Endpoints.checkURLs(ck)
	c.IDTokenEndpoints.checkURLs(ck)
}

func (c *googleConfig) build(b *base) Provider {
	return &google{newOIDCCore(&c.oidcConfig, b, or(c.Issuer, googleIssuer), googleDefaultScopes)}
}

// Revoke revokes the refresh token when there is one (it ends the whole
// grant), else the access token.
func (g *google) Revoke(ctx context.Context, _ string, gr Grant) error {
	revokeURL := g.revokeURL
	if revokeURL == "" {
		doc, err := g.disc.get(ctx)
		if err != nil {
			return err
		}
		revokeURL = doc.RevocationEndpoint
	}
	if revokeURL == "" {
		return ErrRevokeUnsupported
	}
	return g.revokeRFC7009(ctx, revokeURL, gr, false)
}
