package providers

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"

	"golang.org/x/oauth2"
)

// Naver Login (the OAuth 2.0 stack under /oauth2.0/), each endpoint
// replaceable from config.
const (
	naverAuthURL     = "https://nid.naver.com/oauth2.0/authorize"
	naverTokenURL    = "https://nid.naver.com/oauth2.0/token"
	naverUserinfoURL = "https://openapi.naver.com/v1/nid/me"
	naverRevokeURL   = "https://nid.naver.com/oauth2.0/revoke"
)

// naver is Naver Login: no scope parameter (consent items live in the
// developer console), no PKCE, no nonce, no id_token. The token request
// repeats the login's state; errors arrive with HTTP 200. The profile comes
// in a {"resultcode","message","response"} envelope.
type naver struct {
	*base
	authURL, userinfoURL, revokeURL string
	oauth                           *oauth2.Config
}

var (
	_ Provider = (*naver)(nil)
	_ Revoker  = (*naver)(nil)
)

func init() {
	register("naver", preset{config: func() presetConfig { return &naverConfig{} }, displayName: "Naver"})
}

// naverConfig is a `type: naver` entry: no id_token settings.
type naverConfig struct {
	Common    `yaml:",inline"`
	Endpoints `yaml:",inline"`
}

func (c *naverConfig) check(ck checker) {
	if c.ClientSecret == "" {
		ck.add("client_secret", "required for type naver (every Naver token request carries it)")
	}
	c.Endpoints.checkURLs(ck)
	if len(c.Scopes) > 0 {
		ck.add("scopes", "naver takes no scopes (consent items are chosen in the Naver developer console)")
	}
}

func (c *naverConfig) build(b *base) Provider {
	n := &naver{
		base:        b,
		authURL:     or(c.AuthURL, naverAuthURL),
		userinfoURL: or(c.UserinfoURL, naverUserinfoURL),
		revokeURL:   or(c.RevokeURL, naverRevokeURL),
	}
	n.oauth = b.oauth2Config(n.authURL, or(c.TokenURL, naverTokenURL))
	return n
}

// AuthCodeURL sends no scope. Naver spells a fresh sign-in
// auth_type=reauthenticate (also its nearest to an account chooser) and
// asking consent again auth_type=reprompt; it takes no login hint.
func (n *naver) AuthCodeURL(_ context.Context, o AuthOptions) (string, error) {
	extra := url.Values{}
	switch o.Prompt {
	case PromptLogin, PromptSelectAccount:
		extra.Set("auth_type", "reauthenticate")
	case PromptConsent:
		extra.Set("auth_type", "reprompt")
	}
	return n.authCodeURL(n.authURL, "", o, extra), nil
}

func (n *naver) Exchange(ctx context.Context, ex Exchange) (Identity, error) {
	tok, err := n.exchangeCode(ctx, n.oauth, ex,
		tokenErrorOpts{okInvalidRequestIsGrant: true},
		oauth2.SetAuthURLParam("state", ex.State))
	if err != nil {
		return Identity{}, err
	}
	body, perr := n.h.getJSON(ctx, "userinfo", n.userinfoURL, tok.AccessToken)
	if perr != nil {
		return Identity{}, perr
	}
	u, err := decodeNaverUserinfo(body)
	if err != nil {
		return Identity{}, err
	}
	id := n.identity(u.Subject, tok)
	id.Email, id.Name, id.Picture = u.Email, u.Name, u.Picture
	return id, nil
}

// Revoke deletes the token pair at /oauth2.0/revoke (revoking one token of
// the pair revokes both). The access token is sent when there is one, as
// Naver documents; else the refresh token.
func (n *naver) Revoke(ctx context.Context, _ string, g Grant) error {
	token, hint := g.AccessToken, "access_token"
	if token == "" {
		token, hint = g.RefreshToken, "refresh_token"
	}
	if token == "" {
		return &Error{Code: CodeInvalidGrant, Cause: errors.New("revoke: no token to revoke")}
	}
	form := url.Values{
		"client_id":       {n.clientID},
		"client_secret":   {n.clientSecret},
		"token":           {token},
		"token_type_hint": {hint},
	}
	return n.revokeForm(ctx, n.revokeURL, form, "")
}

// naverUser is what we take from /v1/nid/me.
type naverUser struct {
	Subject, Email, Name, Picture string
}

// naverUserinfo is the wire shape of /v1/nid/me.
type naverUserinfo struct {
	ResultCode string `json:"resultcode"`
	Response   *struct {
		ID           scalar `json:"id"`
		Email        string `json:"email"`
		Nickname     string `json:"nickname"`
		Name         string `json:"name"`
		ProfileImage string `json:"profile_image"`
	} `json:"response"`
}

// decodeNaverUserinfo reads the envelope: anything but resultcode "00" is
// refused, and response.id is required. Naver sends no email-verified flag.
func decodeNaverUserinfo(body []byte) (naverUser, error) {
	var w naverUserinfo
	if err := json.Unmarshal(body, &w); err != nil {
		return naverUser{}, &Error{Code: CodeInvalidResponse, Cause: errors.New("userinfo: malformed JSON")}
	}
	if w.ResultCode != "00" {
		return naverUser{}, &Error{Code: CodeInvalidResponse, Cause: errors.New("userinfo: resultcode " + or(wireCode(w.ResultCode), "missing"))}
	}
	if w.Response == nil || w.Response.ID == "" {
		return naverUser{}, &Error{Code: CodeInvalidResponse, Cause: errors.New("userinfo: response.id missing")}
	}
	r := w.Response
	return naverUser{
		Subject: string(r.ID),
		Email:   r.Email,
		Name:    or(r.Nickname, r.Name),
		Picture: r.ProfileImage,
	}, nil
}
