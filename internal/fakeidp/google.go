package fakeidp

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Sign in with Google: space-separated scopes (email and profile also as
// their userinfo URLs), request errors as error pages, PKCE plain or S256,
// a refresh token only with access_type=offline, ya29. access tokens,
// 4/0A codes.
type googleDialect struct{ standard }

// Google is the Kind of this dialect.
const Google Kind = "google"

func init() { dialects[Google] = googleDialect{} }

const (
	googleEmailScope   = "https://www.googleapis.com/auth/userinfo.email"
	googleProfileScope = "https://www.googleapis.com/auth/userinfo.profile"
)

func (googleDialect) paths() paths {
	return paths{authorize: "/o/oauth2/v2/auth", authorizeAlias: "/o/oauth2/auth", consent: "/o/oauth2/consent",
		token: "/token", userinfo: "/v1/userinfo", jwks: "/oauth2/v3/certs",
		discovery: "/.well-known/openid-configuration", revoke: "/revoke"}
}

func (googleDialect) oidc() bool { return true }

func (googleDialect) defaultUser() User {
	return User{Subject: "108123456789012345678", Email: "alice@gmail.example", EmailVerified: true, Nickname: "alice", Name: "Alice Example", Picture: "https://lh3.googleusercontent.example/a/alice=s96-c"}
}

func (googleDialect) providerConfig(_ *Emulator, m map[string]any, discovery bool) {
	if discovery {
		issuerOnly(m)
	}
}

// issuerOnly leaves the endpoints to discovery.
func issuerOnly(m map[string]any) {
	for _, k := range []string{"auth_url", "token_url", "userinfo_url", "jwks_url", "revoke_url"} {
		delete(m, k)
	}
}

// ---- authorize ----

func (googleDialect) invalidClient(string) *authzError {
	return &authzError{page: true, status: 400, code: "invalid_client", desc: "The OAuth client was not found."}
}

func (googleDialect) redirectMismatch(redirectURI string) *authzError {
	return &authzError{page: true, status: 400, code: "redirect_uri_mismatch", desc: fmt.Sprintf("You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. redirect_uri=%s", redirectURI)}
}

func (googleDialect) badResponseType(rt string) *authzError {
	return &authzError{page: true, status: 400, code: "invalid_request", desc: fmt.Sprintf("Invalid response_type: %s", rt)}
}

func (googleDialect) parseScopes(raw string) ([]string, *authzError) {
	items := strings.Fields(raw)
	if len(items) == 0 {
		return nil, &authzError{page: true, status: 400, code: "invalid_request", desc: "Missing required parameter: scope"}
	}
	var out []string
	for _, it := range items {
		switch it {
		case googleEmailScope:
			it = "email"
		case googleProfileScope:
			it = "profile"
		case "openid", "email", "profile":
		default:
			return nil, &authzError{page: true, status: 400, code: "invalid_scope", desc: fmt.Sprintf("Some requested scopes were invalid. {invalid=[%s]}", it)}
		}
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out, nil
}

// authorizeParams: access_type=offline, and PKCE errors as error pages.
func (googleDialect) authorizeParams(e *Emulator, q url.Values, req *authRequest) *authzError {
	req.offline = q.Get("access_type") == "offline"
	return e.parsePKCE(q, req, true)
}

func (googleDialect) pkceMethods() []string { return []string{"plain", "S256"} }
func (googleDialect) newCode() string       { return "4/0A" + randToken(48) } // contains a '/': it must be URL-encoded
func (googleDialect) denied() string        { return "The user denied access to the app." }

func (googleDialect) consent(p *consentPage, req *authRequest, u User) {
	nick := nickname(u)
	p.Lang, p.Title, p.Brand, p.Color = "en", "Sign in - Google Accounts", "Sign in with Google", "#1A73E8"
	who := u.Email
	if who == "" {
		who = nick
	}
	p.Greeting = p.App + " wants to access your Google Account (" + who + ", " + nick + ")"
	p.ItemsHeading = "This will allow " + p.App + " to:"
	for _, s := range req.scopes {
		switch s {
		case "openid":
			p.Items = append(p.Items, "Associate you with your personal info on Google (openid)")
		case "email":
			p.Items = append(p.Items, "See your primary Google Account email address (email)")
		case "profile":
			p.Items = append(p.Items, "See your personal info, including any personal info you've made publicly available (profile)")
		}
	}
	p.ApproveLabel, p.DenyLabel = "Continue", "Cancel"
}

func (googleDialect) errorPage(d *errorPageData, status int, a *authzError) {
	d.Lang, d.Brand, d.Title = "en", "Google", "Access blocked: This app's request is invalid"
	d.CodeLabel = fmt.Sprintf("Error %d: %s", status, a.code)
}

// ---- token ----

func (googleDialect) accessTTL() time.Duration             { return 3599 * time.Second }
func (googleDialect) newAccessToken() string               { return "ya29." + randToken(120) }
func (googleDialect) newRefreshToken() string              { return "1//0" + randToken(72) }
func (googleDialect) withRefresh(g *grant) bool            { return g.offline }
func (googleDialect) rotateRefresh(*grant, time.Time) bool { return false }

func (googleDialect) tokenError(k tokenErrKind, detail string) (int, map[string]any) {
	switch k {
	case teClientUnknown, teHeaderOnly:
		return oauthError(401, "invalid_client", "The OAuth client was not found.")
	case teClientSecret:
		return oauthError(401, "invalid_client", "Unauthorized")
	case teCode, tePKCEUnexpected:
		return oauthError(400, "invalid_grant", "Bad Request")
	case teRedirect:
		return oauthError(400, "redirect_uri_mismatch", "Bad Request")
	case tePKCEMissing:
		return oauthError(400, "invalid_grant", "Missing code verifier.")
	case tePKCEInvalid:
		return oauthError(400, "invalid_grant", "Invalid code verifier.")
	case teRefresh:
		return oauthError(400, "invalid_grant", "Token has been expired or revoked.")
	default:
		return oauthError(400, "unsupported_grant_type", "Invalid grant_type: "+detail)
	}
}

func (d googleDialect) tokenResponse(e *Emulator, g *grant, at, rt string, now time.Time, fault IDTokenFault, first bool) map[string]any {
	m := map[string]any{"access_token": at, "expires_in": int64(d.accessTTL() / time.Second), "token_type": "Bearer", "scope": googleScopeString(g.scopes)}
	if rt != "" {
		m["refresh_token"] = rt
	}
	if g.has("openid") || g.has("email") || g.has("profile") {
		m["id_token"] = e.idTokenFor(g, at, now, fault, first)
	}
	return m
}

// googleScopeString is how Google echoes granted scopes: email and profile as
// their userinfo URLs.
func googleScopeString(scopes []string) string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		switch s {
		case "email":
			out = append(out, googleEmailScope)
		case "profile":
			out = append(out, googleProfileScope)
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

func (googleDialect) idTokenClaims(c map[string]any, g *grant, accessToken string, _ time.Time) {
	standardClaims(c, g, accessToken, false)
}

// ---- resources ----

func (googleDialect) userinfo(_ *Emulator, _ *http.Request, g *grant) any {
	return standardUserinfo(g, false)
}

func (googleDialect) genericError(_ *Emulator, endpoint string, status int) any {
	if endpoint == "token" {
		code := "invalid_request"
		if status == http.StatusUnauthorized {
			code = "invalid_client"
		}
		return map[string]any{"error": code, "error_description": "Bad Request"}
	}
	return oauthGenericError(endpoint, status)
}

func (googleDialect) discovery(e *Emulator, m map[string]any) {
	p := e.d.paths()
	m["userinfo_endpoint"] = e.base + p.userinfo
	m["revocation_endpoint"] = e.base + p.revoke
	m["scopes_supported"] = []string{"openid", "email", "profile"}
	m["claims_supported"] = []string{"aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"}
}
