package fakeidp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// A generic OAuth2 server with a JSON userinfo endpoint, Gitea-like: scopes
// recorded but never refused, PKCE plain or S256, every token error HTTP
// 400, {"message","url"} API errors, no revocation, no id_token.
type oauth2Dialect struct{ standard }

// OAuth2 is the Kind of this dialect.
const OAuth2 Kind = "oauth2" // a generic OAuth2 server with JSON userinfo, Gitea-like

func init() { dialects[OAuth2] = oauth2Dialect{} }

func (oauth2Dialect) paths() paths {
	return paths{authorize: "/login/oauth/authorize", consent: "/login/oauth/grant",
		token: "/login/oauth/access_token", userinfo: "/api/v1/user"}
}

func (oauth2Dialect) defaultUser() User {
	return User{Subject: "42", Email: "carol@gitea.example", EmailVerified: true, Nickname: "carol", Name: "Carol Example", Picture: "https://gitea.example/avatars/carol"}
}

// providerConfig: Gitea's user JSON mapped by claim paths, PKCE on.
func (oauth2Dialect) providerConfig(_ *Emulator, m map[string]any, _ bool) {
	m["display_name"] = "Gitea"
	m["scopes"] = []string{"read:user"}
	m["pkce"] = true
	m["claims"] = map[string]string{"subject": "id", "email": "email", "name": "full_name", "picture": "avatar_url"}
}

// ---- authorize ----

func (oauth2Dialect) invalidClient(string) *authzError {
	return &authzError{page: true, status: 400, code: "invalid_client", desc: "Client ID not registered"}
}

func (oauth2Dialect) redirectMismatch(string) *authzError {
	return &authzError{page: true, status: 400, code: "invalid_request", desc: "Unregistered Redirect URI."}
}

// parseScopes: recorded, never refused.
func (oauth2Dialect) parseScopes(raw string) ([]string, *authzError) {
	return strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' }), nil
}

func (oauth2Dialect) pkceMethods() []string { return []string{"plain", "S256"} }
func (oauth2Dialect) denied() string {
	return "The resource owner or authorization server denied the request."
}

func (oauth2Dialect) consent(p *consentPage, req *authRequest, u User) {
	p.Lang, p.Title, p.Brand, p.Color = "en", "Authorize Application", "Gitea", "#609926"
	p.Greeting = "Signed in as " + nickname(u) + ". " + p.App + " would like to access your account."
	p.ItemsHeading = "Requested scopes"
	p.Items = req.scopes
	if len(p.Items) == 0 {
		p.Items = []string{"read:user (default)"}
	}
	p.ApproveLabel, p.DenyLabel = "Authorize Application", "Cancel"
}

// ---- token ----

// tokenError: every error is HTTP 400.
func (oauth2Dialect) tokenError(k tokenErrKind, detail string) (int, map[string]any) {
	switch k {
	case teClientUnknown, teHeaderOnly:
		return oauthError(400, "invalid_client", fmt.Sprintf("cannot load client with client id: '%s'", detail))
	case teClientSecret:
		return oauthError(400, "unauthorized_client", "invalid client secret")
	case teCode:
		return oauthError(400, "unauthorized_client", "client is not authorized")
	case teRedirect:
		return oauthError(400, "unauthorized_client", "unexpected redirect URI")
	case tePKCEMissing, tePKCEInvalid, tePKCEUnexpected:
		return oauthError(400, "unauthorized_client", "failed PKCE code challenge")
	case teRefresh:
		return oauthError(400, "unauthorized_client", "unable to parse refresh token")
	default:
		return oauthError(400, "unsupported_grant_type", "Only refresh_token or authorization_code grant type is supported")
	}
}

func (d oauth2Dialect) tokenResponse(_ *Emulator, _ *grant, at, rt string, _ time.Time, _ IDTokenFault, _ bool) map[string]any {
	m := map[string]any{"access_token": at, "token_type": "bearer", "expires_in": int64(d.accessTTL() / time.Second)}
	if rt != "" {
		m["refresh_token"] = rt
	}
	return m
}

// ---- resources ----

func (oauth2Dialect) userinfoMethods() []string { return []string{http.MethodGet} }

// userinfo is the body of Gitea's GET /api/v1/user.
func (oauth2Dialect) userinfo(_ *Emulator, _ *http.Request, g *grant) any {
	u := g.user
	var id any = u.Subject
	if isJSONInteger(u.Subject) {
		id = json.Number(u.Subject)
	}
	m := map[string]any{"id": id, "login": u.Nickname, "username": u.Nickname, "full_name": u.Name}
	if u.Email != "" {
		m["email"] = u.Email
	}
	if u.Picture != "" {
		m["avatar_url"] = u.Picture
	}
	return m
}

func (oauth2Dialect) userinfoAuthError(e *Emulator, w http.ResponseWriter, _ tokenState) {
	e.writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "token is required", "url": e.base + "/api/swagger"}, false)
}

func (oauth2Dialect) genericError(e *Emulator, endpoint string, status int) any {
	if endpoint == "token" {
		return oauthGenericError(endpoint, status)
	}
	return map[string]any{"message": statusText(status), "url": e.base + "/api/swagger"}
}

// revoke: Gitea has no revocation endpoint, so it is never routed.
func (oauth2Dialect) revoke(*Emulator, http.ResponseWriter, *http.Request) {}
