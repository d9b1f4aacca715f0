package fakeidp

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// A dialect is one provider's wire format over the shared machinery: its
// paths, scopes, consent and error pages, token and userinfo JSON, error
// shapes and token formats. Each provider has one file (kakao.go, naver.go,
// google.go, oidc.go, oauth2.go) registering one dialect; standard holds
// what most of them share.
type dialect interface {
	paths() paths
	oidc() bool   // issues id_tokens: signing keys, a JWKS, an issuer
	korean() bool // pages and messages in Korean
	jsonContentType() string
	defaultUser() User
	checkUser(u User) error
	providerConfig(e *Emulator, m map[string]any, discovery bool) // the preset's own settings
	setup(e *Emulator) error                                      // the dialect's own state (Emulator.ext), made at Start

	// authorize
	invalidClient(clientID string) *authzError
	redirectMismatch(redirectURI string) *authzError
	badResponseType(rt string) *authzError
	parseScopes(raw string) ([]string, *authzError)
	authorizeParams(e *Emulator, q url.Values, req *authRequest) *authzError // PKCE and the provider's own parameters
	pkceMethods() []string
	newCode() string
	denied() string     // the error_description of access_denied
	deniedCode() string // the error of a cancelled consent (access_denied)
	consent(p *consentPage, req *authRequest, u User)
	approved(e *Emulator, req *authRequest, u User, first bool, v url.Values) // adds to the callback's code and state
	errorPage(d *errorPageData, status int, a *authzError)

	// token endpoint
	tokenMethods() []string
	tokenForm(r *http.Request) url.Values
	authenticateClient(e *Emulator, r *http.Request, form url.Values) (k tokenErrKind, detail string, ok bool)
	checkCode(form url.Values, c *authCode) (tokenErrKind, bool)
	otherGrant(e *Emulator, w http.ResponseWriter, grantType string, form url.Values) bool
	withRefresh(g *grant) bool
	rotateRefresh(g *grant, now time.Time) bool
	accessTTL() time.Duration
	refreshTTL() time.Duration
	tokenError(k tokenErrKind, detail string) (int, map[string]any)
	newAccessToken() string
	newRefreshToken() string
	tokenResponse(e *Emulator, g *grant, at, rt string, now time.Time, fault IDTokenFault, first bool) map[string]any
	idTokenClaims(c map[string]any, g *grant, accessToken string, now time.Time)

	// resources
	userinfoMethods() []string
	userinfo(e *Emulator, r *http.Request, g *grant) any
	userinfoAuthError(e *Emulator, w http.ResponseWriter, st tokenState)
	genericError(e *Emulator, endpoint string, status int) any
	revoke(e *Emulator, w http.ResponseWriter, r *http.Request)
	discovery(e *Emulator, m map[string]any)
	routes(e *Emulator, mux *http.ServeMux) // endpoints beyond the common ones
}

// dialects maps each Kind to its dialect; each dialect file registers one.
var dialects = map[Kind]dialect{}

// paths are where a dialect serves its endpoints ("" = none).
type paths struct {
	authorize, authorizeAlias, consent, token, userinfo string
	jwks, discovery, revoke                             string
}

// standard is what most dialects share; each dialect embeds it and
// overrides what differs.
type standard struct{}

func (standard) oidc() bool                                               { return false }
func (standard) korean() bool                                             { return false }
func (standard) jsonContentType() string                                  { return "application/json; charset=utf-8" }
func (standard) checkUser(User) error                                     { return nil }
func (standard) pkceMethods() []string                                    { return []string{"S256"} }
func (standard) newCode() string                                          { return randToken(32) }
func (standard) newAccessToken() string                                   { return randToken(32) }
func (standard) newRefreshToken() string                                  { return randToken(40) }
func (standard) accessTTL() time.Duration                                 { return time.Hour }
func (standard) refreshTTL() time.Duration                                { return 180 * 24 * time.Hour }
func (standard) tokenMethods() []string                                   { return []string{http.MethodPost} }
func (standard) tokenForm(r *http.Request) url.Values                     { return r.PostForm }
func (standard) withRefresh(*grant) bool                                  { return true }
func (standard) rotateRefresh(*grant, time.Time) bool                     { return true }
func (standard) userinfoMethods() []string                                { return []string{http.MethodGet, http.MethodPost} }
func (standard) discovery(*Emulator, map[string]any)                      {}
func (standard) routes(*Emulator, *http.ServeMux)                         {}
func (standard) idTokenClaims(map[string]any, *grant, string, time.Time)  {}
func (standard) setup(*Emulator) error                                    { return nil }
func (standard) deniedCode() string                                       { return "access_denied" }
func (standard) approved(*Emulator, *authRequest, User, bool, url.Values) {}

// authenticateClient: client_secret_post, client_id and (when the
// emulator has one) client_secret in the body.
func (standard) authenticateClient(e *Emulator, r *http.Request, form url.Values) (tokenErrKind, string, bool) {
	clientID := form.Get("client_id")
	if clientID == "" && r.Header.Get("Authorization") != "" {
		// Every emulated provider is client_secret_post only: an
		// Authorization: Basic header alone does not identify the client.
		return teHeaderOnly, clientID, false
	}
	if clientID != e.opts.ClientID {
		return teClientUnknown, clientID, false
	}
	if e.opts.ClientSecret != "" && subtle.ConstantTimeCompare([]byte(form.Get("client_secret")), []byte(e.opts.ClientSecret)) != 1 {
		return teClientSecret, "", false
	}
	return 0, "", true
}

func (standard) otherGrant(*Emulator, http.ResponseWriter, string, url.Values) bool { return false }

func (standard) badResponseType(string) *authzError {
	return &authzError{code: "unsupported_response_type", desc: "response_type must be code"}
}

// authorizeParams: PKCE, its errors as error redirects.
func (standard) authorizeParams(e *Emulator, q url.Values, req *authRequest) *authzError {
	return e.parsePKCE(q, req, false)
}

// checkCode: the redirect_uri of the authorization request, and PKCE.
func (standard) checkCode(form url.Values, c *authCode) (tokenErrKind, bool) {
	if form.Get("redirect_uri") != c.req.redirectURI {
		return teRedirect, false
	}
	verifier := form.Get("code_verifier")
	switch {
	case c.req.challenge == "" && verifier != "":
		return tePKCEUnexpected, false
	case c.req.challenge != "" && verifier == "":
		return tePKCEMissing, false
	case c.req.challenge != "" && !pkceMatches(c.req.method, c.req.challenge, verifier):
		return tePKCEInvalid, false
	}
	return 0, true
}

func (standard) errorPage(d *errorPageData, _ int, a *authzError) {
	d.Lang, d.Title = "en", "Authorization error"
	d.CodeLabel = "Error: " + a.code
}

// genericError is the usual error JSON of a standard provider.
func (standard) genericError(_ *Emulator, endpoint string, status int) any {
	return oauthGenericError(endpoint, status)
}

// userinfoAuthError is the OAuth 2.0 bearer-token error.
func (standard) userinfoAuthError(e *Emulator, w http.ResponseWriter, _ tokenState) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="userinfo", error="invalid_token"`)
	e.writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token", "error_description": "Invalid Credentials"}, false)
}

// revoke is RFC 7009 as Google answers it: POST token= (an access or a
// refresh token; the whole grant goes), 200 {} or 400 invalid_token.
func (standard) revoke(e *Emulator, w http.ResponseWriter, r *http.Request) {
	if !e.revokeToken(r.Form.Get("token")) {
		e.writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_token", "error_description": "Token expired or revoked"}, false)
		return
	}
	e.writeJSON(w, http.StatusOK, map[string]any{}, false)
}

// oauthError is the RFC 6749 error body.
func oauthError(status int, code, desc string) (int, map[string]any) {
	return status, map[string]any{"error": code, "error_description": desc}
}

// statusText is the HTTP status text, or "error".
func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "error"
}

// oauthGenericError is the usual error JSON of a standard provider.
func oauthGenericError(endpoint string, status int) any {
	if endpoint != "token" && status == http.StatusUnauthorized {
		return map[string]any{"error": "invalid_token", "error_description": "Invalid Credentials"}
	}
	code := "invalid_request"
	if endpoint == "token" && status == http.StatusUnauthorized {
		code = "invalid_client"
	}
	return map[string]any{"error": code, "error_description": statusText(status)}
}

func mustDialect(k Kind) (dialect, error) {
	d, ok := dialects[k]
	if !ok {
		return nil, fmt.Errorf("emulator: unknown kind %q", k)
	}
	return d, nil
}
