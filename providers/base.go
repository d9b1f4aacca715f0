package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// base is what every preset shares: its facts, client credentials,
// redirect URI, scopes and the HTTP side.
type base struct {
	info                   Info
	clientID, clientSecret string
	redirectURI            string
	scopes                 []string
	h                      *httpx
}

func newBase(c *Common, p preset, h *httpx, redirectBase string) *base {
	b := &base{
		info:         Info{Name: c.Name, Type: c.Type, DisplayName: c.DisplayName, PKCE: p.pkce},
		clientID:     c.ClientID,
		clientSecret: c.ClientSecret,
		redirectURI:  redirectBase + "/auth/callback/" + c.Name,
		scopes:       append([]string(nil), c.Scopes...),
		h:            h,
	}
	if c.PKCE != nil {
		b.info.PKCE = *c.PKCE
	}
	if b.info.DisplayName == "" {
		b.info.DisplayName = p.displayName
	}
	if b.info.DisplayName == "" {
		b.info.DisplayName = strings.ToUpper(c.Name[:1]) + c.Name[1:]
	}
	return b
}

func (b *base) Info() Info { return b.info }

// authCodeURL builds the authorize URL by hand, so each preset controls the
// scope separator (Kakao: commas). scope "" sends no scope parameter; the
// nonce and code challenge are sent only when the provider uses them;
// extra carries the preset's own parameters (its prompt spelling).
func (b *base) authCodeURL(authURL, scope string, o AuthOptions, extra url.Values) string {
	v := url.Values{
		"response_type": {"code"},
		"client_id":     {b.clientID},
		"redirect_uri":  {b.redirectURI},
	}
	if o.State != "" {
		v.Set("state", o.State)
	}
	if scope != "" {
		v.Set("scope", scope)
	}
	if b.info.Nonce && o.Nonce != "" {
		v.Set("nonce", o.Nonce)
	}
	if b.info.PKCE && o.CodeChallenge != "" {
		v.Set("code_challenge", o.CodeChallenge)
		v.Set("code_challenge_method", "S256")
	}
	for k, vs := range extra {
		if len(vs) > 0 && vs[0] != "" {
			v.Set(k, vs[0])
		}
	}
	sep := "?"
	if strings.Contains(authURL, "?") {
		sep = "&"
	}
	return authURL + sep + v.Encode()
}

// oauth2Config is the x/oauth2 config for the token request: client
// credentials in the body (AuthStyleInParams, never auto-detected, which
// would retry the request), our redirect URI, no scopes (the token request
// carries none).
func (b *base) oauth2Config(authURL, tokenURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     b.clientID,
		ClientSecret: b.clientSecret,
		RedirectURL:  b.redirectURI,
		Endpoint: oauth2.Endpoint{
			AuthURL:   authURL,
			TokenURL:  tokenURL,
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// exchangeCode trades ex.Code, sending the PKCE verifier when this preset
// uses PKCE and the caller has one.
func (b *base) exchangeCode(ctx context.Context, cfg *oauth2.Config, ex Exchange, eo tokenErrorOpts, opts ...oauth2.AuthCodeOption) (*oauth2.Token, error) {
	if b.info.PKCE && ex.CodeVerifier != "" {
		opts = append(opts, oauth2.VerifierOption(ex.CodeVerifier))
	}
	return b.h.exchange(ctx, cfg, ex.Code, eo, opts...)
}

func (b *base) identity(subject string, tok *oauth2.Token) Identity {
	id := Identity{Provider: b.info.Name, Subject: subject}
	if tok != nil {
		id.Grant = Grant{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
	}
	return id
}

// rawIDToken returns the id_token of a token response.
func rawIDToken(tok *oauth2.Token) (string, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", badIDToken("token response has no id_token")
	}
	return raw, nil
}

// revokeForm POSTs a revocation form and maps the answer: 2xx without an
// error member is success; a 4xx or an error member means the token is
// already unusable (CodeInvalidGrant, nothing to retry), except when the
// provider refused the app's own credentials: invalid_client or
// unauthorized_client, or Kakao's -401 to a call made with the admin key.
// That is a configuration problem to fix and retry, CodeProviderError like
// 5xx, timeouts and resets.
func (b *base) revokeForm(ctx context.Context, revokeURL string, form url.Values, authorization string) error {
	body, perr := b.h.postForm(ctx, "revoke", revokeURL, form, authorization)
	if perr != nil {
		if perr.Code == CodeInvalidResponse {
			perr.Code = CodeInvalidGrant
			if appRefused(perr.Wire, authorization) {
				perr.Code = CodeProviderError
				perr.Cause = fmt.Errorf("revoke: the provider refused the app's credentials (HTTP %d, %s)", perr.Status, perr.Wire)
			}
		}
		return perr
	}
	var e struct {
		Error string `json:"error"`
	}
	if len(body) > 0 && json.Unmarshal(body, &e) == nil && e.Error != "" {
		if appRefused(e.Error, authorization) {
			return &Error{Code: CodeProviderError, Cause: fmt.Errorf("revoke: the provider refused the app's credentials (%s)", wireCode(e.Error))}
		}
		return &Error{Code: CodeInvalidGrant, Cause: fmt.Errorf("revoke: %s", wireCode(e.Error))}
	}
	return nil
}

// appRefused reports whether a revocation's error code says the app's own
// credentials were refused, rather than the user's token.
func appRefused(wire, authorization string) bool {
	return wire == "invalid_client" || wire == "unauthorized_client" ||
		(wire == "-401" && strings.HasPrefix(authorization, "KakaoAK "))
}

// revokeRFC7009 revokes the refresh token when there is one (it takes the
// whole grant with it), else the access token.
func (b *base) revokeRFC7009(ctx context.Context, revokeURL string, g Grant, clientAuth bool) error {
	token, hint := g.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = g.AccessToken, "access_token"
	}
	if token == "" {
		return &Error{Code: CodeInvalidGrant, Cause: errors.New("revoke: no token to revoke")}
	}
	form := url.Values{"token": {token}}
	if clientAuth {
		form.Set("token_type_hint", hint)
		form.Set("client_id", b.clientID)
		if b.clientSecret != "" {
			form.Set("client_secret", b.clientSecret)
		}
	}
	return b.revokeForm(ctx, revokeURL, form, "")
}
