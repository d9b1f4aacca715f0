package providers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// oidcProvider is any OpenID Connect issuer (type oidc, and the core of
// google): endpoints from discovery (fetched lazily, cached) unless set in
// config, PKCE S256, nonce, a verified id_token, and userinfo when the
// provider has one (its sub must match the id_token's).
type oidcProvider struct {
	*base
	issuer string
	scope  string // space-joined, openid first

	// config overrides; empty means "from discovery"
	authURL, tokenURL, userinfoURL, jwksURL, revokeURL string

	disc *discovery
	keys *keySet
	ids  *idVerifier
}

var (
	_ Provider        = (*oidcProvider)(nil)
	_ IDTokenVerifier = (*oidcProvider)(nil)
	_ Revoker         = (*oidcProvider)(nil)
)

var oidcDefaultScopes = []string{"openid", "profile", "email"}

func init() {
	register("oidc", preset{config: func() presetConfig { return &oidcConfig{} }, pkce: true})
}

// oidcConfig is a `type: oidc` entry; issuer is required.
type oidcConfig struct {
	Common           `yaml:",inline"`
	Endpoints        `yaml:",inline"`
	IDTokenEndpoints `yaml:",inline"`
}

func (c *oidcConfig) check(ck checker) {
	c.Endpoints.checkURLs(ck)
	c.IDTokenEndpoints.checkURLs(ck)
	ck.required("type oidc", "issuer", c.Issuer)
}

func (c *oidcConfig) build(b *base) Provider {
	return newOIDCCore(c, b, c.Issuer, oidcDefaultScopes)
}

func newOIDCCore(c *oidcConfig, b *base, issuer string, defaultScopes []string) *oidcProvider {
	scopes := b.scopes
	if len(scopes) == 0 {
		scopes = defaultScopes
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	b.scopes = scopes
	b.info.Nonce = true
	p := &oidcProvider{
		base:        b,
		issuer:      issuer,
		scope:       strings.Join(scopes, " "),
		authURL:     c.AuthURL,
		tokenURL:    c.TokenURL,
		userinfoURL: c.UserinfoURL,
		jwksURL:     c.JWKSURL,
		revokeURL:   c.RevokeURL,
		disc:        newDiscovery(b.h, issuer),
	}
	p.keys = &keySet{h: b.h, url: func(ctx context.Context) (string, error) {
		eps, err := p.endpoints(ctx)
		return eps.jwks, err
	}}
	p.ids = newIDVerifier(issuer, p.keys, c.ClientID, c.AcceptAudiences, b.h.now)
	return p
}

// oidcEndpoints are the resolved endpoints of one provider.
type oidcEndpoints struct {
	auth, token, userinfo, jwks, revoke string
}

// needsDiscovery: discovery is skipped when config names the three
// endpoints a login cannot do without.
func (p *oidcProvider) needsDiscovery() bool {
	return p.authURL == "" || p.tokenURL == "" || p.jwksURL == ""
}

// endpoints resolves config overrides over discovery.
func (p *oidcProvider) endpoints(ctx context.Context) (oidcEndpoints, error) {
	eps := oidcEndpoints{auth: p.authURL, token: p.tokenURL, userinfo: p.userinfoURL, jwks: p.jwksURL, revoke: p.revokeURL}
	if !p.needsDiscovery() {
		return eps, nil
	}
	doc, err := p.disc.get(ctx)
	if err != nil {
		return eps, err
	}
	eps.auth = or(eps.auth, doc.AuthorizationEndpoint)
	eps.token = or(eps.token, doc.TokenEndpoint)
	eps.userinfo = or(eps.userinfo, doc.UserinfoEndpoint)
	eps.jwks = or(eps.jwks, doc.JWKSURI)
	eps.revoke = or(eps.revoke, doc.RevocationEndpoint)
	for name, v := range map[string]string{"authorization_endpoint": eps.auth, "token_endpoint": eps.token, "jwks_uri": eps.jwks} {
		if v == "" {
			return eps, &Error{Code: CodeProviderError, Cause: fmt.Errorf("discovery: no %s", name)}
		}
	}
	return eps, nil
}

// AuthCodeURL runs discovery first when config does not name the
// endpoints (cached once it works; a failure is retried on the next call).
// prompt and login_hint are OpenID Connect's own parameters.
func (p *oidcProvider) AuthCodeURL(ctx context.Context, o AuthOptions) (string, error) {
	authURL := p.authURL
	if authURL == "" {
		eps, err := p.endpoints(ctx)
		if err != nil {
			return "", err
		}
		authURL = eps.auth
	}
	extra := url.Values{"prompt": {string(o.Prompt)}, "login_hint": {o.LoginHint}}
	return p.authCodeURL(authURL, p.scope, o, extra), nil
}

func (p *oidcProvider) Exchange(ctx context.Context, ex Exchange) (Identity, error) {
	if ex.Nonce == "" {
		return Identity{}, badIDToken("no nonce to check")
	}
	eps, err := p.endpoints(ctx)
	if err != nil {
		return Identity{}, err
	}
	tok, err := p.exchangeCode(ctx, p.oauth2Config(eps.auth, eps.token), ex, tokenErrorOpts{})
	if err != nil {
		return Identity{}, err
	}
	raw, err := rawIDToken(tok)
	if err != nil {
		return Identity{}, err
	}
	t, err := p.ids.verify(ctx, raw, ex.Nonce)
	if err != nil {
		return Identity{}, err
	}
	id := p.identity(t.Subject, tok)
	fillFromIDToken(&id, t)
	if eps.userinfo != "" {
		if err := p.mergeUserinfo(ctx, eps.userinfo, tok.AccessToken, &id); err != nil {
			return Identity{}, err
		}
	}
	return id, nil
}

// mergeUserinfo reads the OIDC userinfo endpoint: its sub must equal the
// id_token's; it fills what the id_token left empty.
func (p *oidcProvider) mergeUserinfo(ctx context.Context, userinfoURL, accessToken string, id *Identity) error {
	body, perr := p.h.getJSON(ctx, "userinfo", userinfoURL, accessToken)
	if perr != nil {
		return perr
	}
	doc, err := decodeJSONDoc(body)
	if err != nil {
		return &Error{Code: CodeInvalidResponse, Cause: errors.New("userinfo: malformed JSON")}
	}
	sub, _ := doc["sub"].(string)
	if sub == "" {
		return &Error{Code: CodeInvalidResponse, Cause: errors.New("userinfo: no sub")}
	}
	if sub != id.Subject {
		return badIDToken("sub differs from the userinfo sub")
	}
	if id.Email == "" {
		if email, _ := doc["email"].(string); email != "" {
			id.Email = email
			id.EmailVerified = claimPath{"email_verified"}.truthy(doc)
		}
	}
	if id.Name == "" {
		name, _ := doc["name"].(string)
		nick, _ := doc["nickname"].(string)
		id.Name = or(name, nick)
	}
	if id.Picture == "" {
		id.Picture, _ = doc["picture"].(string)
	}
	return nil
}

func (p *oidcProvider) VerifyIDToken(ctx context.Context, rawIDToken, nonce string) (Identity, error) {
	t, err := p.ids.verify(ctx, rawIDToken, nonce)
	if err != nil {
		return Identity{}, err
	}
	id := p.identity(t.Subject, nil)
	fillFromIDToken(&id, t)
	return id, nil
}

// Revoke posts the grant's refresh token (else its access token) to
// revoke_url or the discovered revocation_endpoint (RFC 7009, client
// credentials in the body). ErrRevokeUnsupported when there is neither.
func (p *oidcProvider) Revoke(ctx context.Context, _ string, g Grant) error {
	revokeURL := p.revokeURL
	if revokeURL == "" {
		doc, err := p.disc.get(ctx)
		if err != nil {
			return err
		}
		revokeURL = doc.RevocationEndpoint
	}
	if revokeURL == "" {
		return ErrRevokeUnsupported
	}
	return p.revokeRFC7009(ctx, revokeURL, g, true)
}

func fillFromIDToken(id *Identity, t *verifiedToken) {
	if t.Email != "" {
		id.Email = t.Email
		id.EmailVerified = bool(t.EmailVerified)
	}
	id.Name = or(t.Name, t.Nickname)
	id.Picture = t.Picture
}
