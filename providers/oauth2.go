package providers

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// oauth2Provider is any OAuth2 server with a JSON userinfo endpoint (type
// oauth2): no id_token, the identity is read from userinfo through dotted
// claim paths; an optional success check refuses failed envelopes. PKCE is
// off unless `pkce: true`.
type oauth2Provider struct {
	*base
	authURL, userinfoURL, revokeURL string
	scope                           string
	oauth                           *oauth2.Config

	subject, email, emailVerified, name, picture claimPath // nil when unmapped
	successPath                                  claimPath
	successEquals                                string
}

var (
	_ Provider = (*oauth2Provider)(nil)
	_ Revoker  = (*oauth2Provider)(nil)
)

func init() {
	register("oauth2", preset{config: func() presetConfig { return &oauth2Config{} }})
}

// oauth2Config is a `type: oauth2` entry: the three endpoints are required
// and the identity is read through claim paths.
type oauth2Config struct {
	Common    `yaml:",inline"`
	Endpoints `yaml:",inline"`
	// Claims maps identity fields (subject, email, email_verified, name,
	// picture) to dotted paths into the userinfo JSON.
	Claims  map[string]string `yaml:"claims"`
	Success *SuccessCheck     `yaml:"success"`
}

// SuccessCheck refuses a userinfo body whose value at Path is not Equals
// (envelopes like Naver's {"resultcode":"00", ...}).
type SuccessCheck struct {
	Path   string `yaml:"path"`
	Equals string `yaml:"equals"`
}

// claimKeys are the identity fields an oauth2 claims map may set.
var claimKeys = map[string]bool{"subject": true, "email": true, "email_verified": true, "name": true, "picture": true}

func (c *oauth2Config) check(ck checker) {
	c.Endpoints.checkURLs(ck)
	ck.required("type oauth2", "auth_url", c.AuthURL, "token_url", c.TokenURL, "userinfo_url", c.UserinfoURL)
	if c.Claims["subject"] == "" {
		ck.add("claims.subject", "required for type oauth2")
	}
	for _, k := range slices.Sorted(maps.Keys(c.Claims)) {
		path := c.Claims[k]
		if !claimKeys[k] {
			ck.add("claims."+k, "unknown claim (want subject, email, email_verified, name or picture)")
			continue
		}
		if _, err := parseClaimPath(path); err != nil && path != "" {
			ck.add("claims."+k, "%v", err)
		}
	}
	if c.Success != nil {
		if _, err := parseClaimPath(c.Success.Path); err != nil {
			ck.add("success.path", "%v", err)
		}
	}
}

func (c *oauth2Config) build(b *base) Provider {
	p := &oauth2Provider{
		base:        b,
		authURL:     c.AuthURL,
		userinfoURL: c.UserinfoURL,
		revokeURL:   c.RevokeURL,
		scope:       strings.Join(b.scopes, " "),
	}
	p.oauth = b.oauth2Config(c.AuthURL, c.TokenURL)
	// Paths were checked by check.
	p.subject, _ = parseClaimPath(c.Claims["subject"])
	p.email, _ = parseClaimPath(c.Claims["email"])
	p.emailVerified, _ = parseClaimPath(c.Claims["email_verified"])
	p.name, _ = parseClaimPath(c.Claims["name"])
	p.picture, _ = parseClaimPath(c.Claims["picture"])
	if c.Success != nil {
		p.successPath, _ = parseClaimPath(c.Success.Path)
		p.successEquals = c.Success.Equals
	}
	return p
}

// AuthCodeURL passes prompt on as it is; a generic server that does not
// know it ignores it.
func (p *oauth2Provider) AuthCodeURL(_ context.Context, o AuthOptions) (string, error) {
	return p.authCodeURL(p.authURL, p.scope, o, url.Values{"prompt": {string(o.Prompt)}}), nil
}

func (p *oauth2Provider) Exchange(ctx context.Context, ex Exchange) (Identity, error) {
	tok, err := p.exchangeCode(ctx, p.oauth, ex, tokenErrorOpts{unauthorizedClientIsGrant: true})
	if err != nil {
		return Identity{}, err
	}
	body, perr := p.h.getJSON(ctx, "userinfo", p.userinfoURL, tok.AccessToken)
	if perr != nil {
		return Identity{}, perr
	}
	doc, err := decodeJSONDoc(body)
	if err != nil {
		return Identity{}, &Error{Code: CodeInvalidResponse, Cause: errors.New("userinfo: malformed JSON")}
	}
	id, err := p.mapClaims(doc)
	if err != nil {
		return Identity{}, err
	}
	id.Grant = Grant{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
	return id, nil
}

// mapClaims applies the success check and the claim paths to a userinfo
// document decoded with UseNumber.
func (p *oauth2Provider) mapClaims(doc map[string]any) (Identity, error) {
	if p.successPath != nil {
		if v, _ := p.successPath.str(doc); v != p.successEquals {
			return Identity{}, &Error{Code: CodeInvalidResponse, Cause: errors.New("userinfo: success check failed")}
		}
	}
	var sub string
	switch v, _ := p.subject.lookup(doc); v := v.(type) {
	case string:
		sub = v
	case json.Number:
		sub = v.String()
	}
	if sub == "" {
		return Identity{}, &Error{Code: CodeInvalidResponse, Cause: errors.New("userinfo: subject missing or not a string or number")}
	}
	id := p.identity(sub, nil)
	if p.email != nil {
		id.Email, _ = p.email.str(doc)
	}
	if p.emailVerified != nil && id.Email != "" {
		id.EmailVerified = p.emailVerified.truthy(doc)
	}
	if p.name != nil {
		id.Name, _ = p.name.str(doc)
	}
	if p.picture != nil {
		id.Picture, _ = p.picture.str(doc)
	}
	return id, nil
}

// Revoke posts to revoke_url (RFC 7009); ErrRevokeUnsupported without one.
func (p *oauth2Provider) Revoke(ctx context.Context, _ string, g Grant) error {
	if p.revokeURL == "" {
		return ErrRevokeUnsupported
	}
	return p.revokeRFC7009(ctx, p.revokeURL, g, true)
}
