package providers

import (
	"context"
	"encoding/json"
	"errors"
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
	_ Preparer = (*oauth2Provider)(nil)
)

func newOAuth2(c Config, b *base) *oauth2Provider {
	p := &oauth2Provider{
		base:        b,
		authURL:     c.AuthURL,
		userinfoURL: c.UserinfoURL,
		revokeURL:   c.RevokeURL,
		scope:       strings.Join(b.scopes, " "),
	}
	p.oauth = b.oauth2Config(c.AuthURL, c.TokenURL)
	// Paths were checked by validate.
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

func (p *oauth2Provider) UsesNonce() bool { return false }

func (p *oauth2Provider) AuthCodeURL(state, _, codeChallenge string) string {
	return p.authCodeURL(p.authURL, p.scope, state, "", codeChallenge, false)
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
