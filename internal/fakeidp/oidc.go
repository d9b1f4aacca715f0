package fakeidp

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// A generic OpenID Connect provider: Google-like, with its own paths,
// offline_access, auth_time and preferred_username, refresh tokens rotated.
type oidcDialect struct{ standard }

// OIDC is the Kind of this dialect.
const OIDC Kind = "oidc" // a generic OpenID Connect provider (Google-like, own paths)

func init() { dialects[OIDC] = oidcDialect{} }

func (oidcDialect) paths() paths {
	return paths{authorize: "/authorize", consent: "/consent", token: "/token", userinfo: "/userinfo",
		jwks: "/jwks", discovery: "/.well-known/openid-configuration", revoke: "/revoke"}
}

func (oidcDialect) oidc() bool { return true }

func (oidcDialect) defaultUser() User {
	return User{Subject: "f2b6c1d0-6a55-4a8e-9c1e-4d1f0b8a7e21", Email: "bob@oidc.example", EmailVerified: true, Nickname: "bob", Name: "Bob Example", Picture: "https://oidc.example/avatars/bob.png"}
}

func (oidcDialect) providerConfig(_ *Emulator, m map[string]any, discovery bool) {
	if discovery {
		issuerOnly(m)
	}
}

// ---- authorize ----

func (oidcDialect) invalidClient(string) *authzError {
	return &authzError{page: true, status: 400, code: "invalid_client", desc: "Unknown client_id."}
}

func (oidcDialect) redirectMismatch(string) *authzError {
	return &authzError{page: true, status: 400, code: "invalid_request", desc: "The redirect_uri is not registered for this client."}
}

func (oidcDialect) parseScopes(raw string) ([]string, *authzError) {
	var out []string
	for _, it := range strings.Fields(raw) {
		switch it {
		case "openid", "email", "profile", "offline_access":
		default:
			return nil, &authzError{code: "invalid_scope", desc: "Unknown scope: " + it}
		}
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out, nil
}

func (oidcDialect) denied() string { return "The resource owner denied the request." }

func (oidcDialect) consent(p *consentPage, req *authRequest, u User) {
	p.Lang, p.Title, p.Brand, p.Color = "en", "Authorize "+p.App, "OpenID Connect Provider", "#3f51b5"
	p.Greeting = "Signed in as " + nickname(u) + ". " + p.App + " is requesting access to your account."
	p.ItemsHeading = "Requested scopes"
	p.Items = req.scopes
	p.ApproveLabel, p.DenyLabel = "Allow", "Cancel"
}

// ---- token ----

func (oidcDialect) tokenError(k tokenErrKind, detail string) (int, map[string]any) {
	switch k {
	case teClientUnknown, teClientSecret, teHeaderOnly:
		return oauthError(401, "invalid_client", "Client authentication failed.")
	case teCode:
		return oauthError(400, "invalid_grant", "The authorization code is invalid, expired or already used.")
	case teRedirect:
		return oauthError(400, "invalid_grant", "The redirect_uri does not match the authorization request.")
	case tePKCEMissing, tePKCEInvalid, tePKCEUnexpected:
		return oauthError(400, "invalid_grant", "PKCE verification failed.")
	case teRefresh:
		return oauthError(400, "invalid_grant", "The refresh token is invalid, expired or revoked.")
	default:
		return oauthError(400, "unsupported_grant_type", "Unsupported grant_type: "+detail)
	}
}

func (d oidcDialect) tokenResponse(e *Emulator, g *grant, at, rt string, now time.Time, fault IDTokenFault, first bool) map[string]any {
	m := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int64(d.accessTTL() / time.Second), "scope": strings.Join(g.scopes, " ")}
	if rt != "" {
		m["refresh_token"] = rt
	}
	if g.has("openid") {
		m["id_token"] = e.idTokenFor(g, at, now, fault, first)
	}
	return m
}

func (oidcDialect) idTokenClaims(c map[string]any, g *grant, accessToken string, _ time.Time) {
	standardClaims(c, g, accessToken, true)
	c["auth_time"] = g.authTime.Unix()
}

// standardClaims are the OpenID Connect claims of Google's and the generic
// provider's id_tokens.
func standardClaims(c map[string]any, g *grant, accessToken string, preferredUsername bool) {
	c["azp"] = g.clientID
	c["at_hash"] = atHash(accessToken)
	if g.has("email") && g.user.Email != "" {
		c["email"] = g.user.Email
		c["email_verified"] = g.user.EmailVerified
	}
	if g.has("profile") {
		addProfile(c, g.user, preferredUsername)
	}
}

// ---- resources ----

func (oidcDialect) userinfo(_ *Emulator, _ *http.Request, g *grant) any {
	return standardUserinfo(g, true)
}

func (oidcDialect) discovery(e *Emulator, m map[string]any) {
	p := e.d.paths()
	m["userinfo_endpoint"] = e.base + p.userinfo
	m["revocation_endpoint"] = e.base + p.revoke
	m["scopes_supported"] = []string{"openid", "email", "profile", "offline_access"}
	m["claims_supported"] = []string{"iss", "aud", "sub", "iat", "exp", "auth_time", "nonce", "at_hash", "email", "email_verified", "name", "preferred_username", "picture"}
}

// standardUserinfo is an OpenID Connect userinfo answer (Google's and the
// generic OIDC emulator's); preferredUsername adds the nickname as
// preferred_username, which Google does not send.
func standardUserinfo(g *grant, preferredUsername bool) map[string]any {
	u := g.user
	m := map[string]any{"sub": u.Subject}
	if g.has("profile") {
		addProfile(m, u, preferredUsername)
	}
	if g.has("email") && u.Email != "" {
		m["email"] = u.Email
		m["email_verified"] = u.EmailVerified
	}
	return m
}

// addProfile adds the OpenID profile claims the user has.
func addProfile(m map[string]any, u User, preferredUsername bool) {
	if u.Name != "" {
		m["name"] = u.Name
		given, family, _ := strings.Cut(u.Name, " ")
		m["given_name"] = given
		if family != "" {
			m["family_name"] = family
		}
	}
	if u.Picture != "" {
		m["picture"] = u.Picture
	}
	if preferredUsername && u.Nickname != "" {
		m["preferred_username"] = u.Nickname
	}
}
