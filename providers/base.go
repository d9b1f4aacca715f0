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

// base is what every preset shares: identity, client credentials, redirect
// URI, scopes, PKCE and the HTTP side.
type base struct {
	name, typ, display     string
	clientID, clientSecret string
	redirectURI            string
	scopes                 []string
	pkce                   bool
	h                      *httpx
}

var pkceDefault = map[string]bool{TypeKakao: true, TypeNaver: false, TypeGoogle: true, TypeOIDC: true, TypeOAuth2: false}

var displayDefault = map[string]string{TypeKakao: "Kakao", TypeNaver: "Naver", TypeGoogle: "Google"}

func newBase(c Config, h *httpx, redirectBase string) *base {
	b := &base{
		name:         c.Name,
		typ:          c.Type,
		display:      c.DisplayName,
		clientID:     c.ClientID,
		clientSecret: c.ClientSecret,
		redirectURI:  redirectBase + "/auth/callback/" + c.Name,
		scopes:       append([]string(nil), c.Scopes...),
		pkce:         pkceDefault[c.Type],
		h:            h,
	}
	if c.PKCE != nil {
		b.pkce = *c.PKCE
	}
	if b.display == "" {
		b.display = displayDefault[c.Type]
	}
	if b.display == "" {
		b.display = strings.ToUpper(c.Name[:1]) + c.Name[1:]
	}
	return b
}

func (b *base) Name() string        { return b.name }
func (b *base) Type() string        { return b.typ }
func (b *base) DisplayName() string { return b.display }
func (b *base) UsesPKCE() bool      { return b.pkce }

// authCodeURL builds the authorize URL by hand, so each preset controls the
// scope separator (Kakao: commas). scope "" sends no scope parameter; nonce
// and codeChallenge are sent only when the preset uses them.
func (b *base) authCodeURL(authURL, scope, state, nonce, codeChallenge string, usesNonce bool) string {
	v := url.Values{
		"response_type": {"code"},
		"client_id":     {b.clientID},
		"redirect_uri":  {b.redirectURI},
	}
	if state != "" {
		v.Set("state", state)
	}
	if scope != "" {
		v.Set("scope", scope)
	}
	if usesNonce && nonce != "" {
		v.Set("nonce", nonce)
	}
	if b.pkce && codeChallenge != "" {
		v.Set("code_challenge", codeChallenge)
		v.Set("code_challenge_method", "S256")
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
	if b.pkce && ex.CodeVerifier != "" {
		opts = append(opts, oauth2.VerifierOption(ex.CodeVerifier))
	}
	return b.h.exchange(ctx, cfg, ex.Code, eo, opts...)
}

func (b *base) identity(subject string, tok *oauth2.Token) Identity {
	id := Identity{Provider: b.name, Subject: subject}
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

// Prepare is a no-op for presets whose endpoints are all known.
func (b *base) Prepare(context.Context) error { return nil }
