package fakeidp

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// grant is one consent turned into tokens: an access token family and at most
// one live refresh token.
type grant struct {
	user         User
	clientID     string
	scopes       []string
	nonce        string
	authTime     time.Time
	offline      bool
	refreshToken string
	refreshExp   time.Time
	revoked      bool
}

func (g *grant) has(scope string) bool { return slices.Contains(g.scopes, scope) }

type accessToken struct {
	g   *grant
	exp time.Time
}

// Token lifetimes, as the providers advertise them in expires_in.
func (e *Emulator) accessTTL() time.Duration {
	switch e.kind {
	case Kakao:
		return 43199 * time.Second
	case Google:
		return 3599 * time.Second
	default:
		return time.Hour
	}
}

const kakaoRefreshTTL = 5183999 * time.Second

func (e *Emulator) refreshTTL() time.Duration {
	if e.kind == Kakao {
		return kakaoRefreshTTL
	}
	return 180 * 24 * time.Hour
}

// token error kinds, mapped to each provider's wording by tokenError.
type tokenErrKind int

const (
	teClientUnknown tokenErrKind = iota
	teClientSecret
	teHeaderOnly // client credentials only in an Authorization: Basic header
	teCode       // unknown, used or expired code
	teRedirect   // redirect_uri differs from the authorization request
	tePKCEMissing
	tePKCEInvalid
	tePKCEUnexpected // a verifier for a code issued without a challenge
	teState          // Naver: state differs from the authorization request
	teGrantType
	teRefresh
)

func (e *Emulator) tokenError(k tokenErrKind, detail string) (int, map[string]any) {
	oe := func(status int, code, desc string) (int, map[string]any) {
		return status, map[string]any{"error": code, "error_description": desc}
	}
	switch e.kind {
	case Kakao:
		ke := func(status int, code, desc, koe string) (int, map[string]any) {
			return status, map[string]any{"error": code, "error_description": desc, "error_code": koe}
		}
		switch k {
		case teClientUnknown, teHeaderOnly:
			return ke(401, "invalid_client", fmt.Sprintf("Not exist client_id [%s]", detail), "KOE101")
		case teClientSecret:
			return ke(401, "invalid_client", "Bad client credentials", "KOE010")
		case teCode:
			return ke(400, "invalid_grant", "authorization code not found for code="+detail, "KOE320")
		case teRedirect:
			return ke(400, "invalid_grant", "Redirect URI mismatch.", "KOE303")
		case tePKCEMissing, tePKCEInvalid, tePKCEUnexpected:
			return ke(400, "invalid_grant", "PKCE verification failed: invalid code_verifier", "KOE320")
		case teRefresh:
			return ke(400, "invalid_grant", "expired_or_invalid_refresh_token", "KOE322")
		default:
			return ke(400, "invalid_request", "unsupported grant_type: "+detail, "KOE001")
		}
	case Naver: // Naver answers every token error with HTTP 200
		switch k {
		case teClientUnknown, teClientSecret, teHeaderOnly:
			return oe(200, "invalid_request", "wrong client id / client secret pair")
		case teCode, teState:
			return oe(200, "invalid_request", "no valid data in session")
		case teRefresh:
			return oe(200, "invalid_request", "invalid refresh token")
		default:
			return oe(200, "unsupported_grant_type", "grant_type is not supported: "+detail)
		}
	case Google:
		switch k {
		case teClientUnknown, teHeaderOnly:
			return oe(401, "invalid_client", "The OAuth client was not found.")
		case teClientSecret:
			return oe(401, "invalid_client", "Unauthorized")
		case teCode, tePKCEUnexpected:
			return oe(400, "invalid_grant", "Bad Request")
		case teRedirect:
			return oe(400, "redirect_uri_mismatch", "Bad Request")
		case tePKCEMissing:
			return oe(400, "invalid_grant", "Missing code verifier.")
		case tePKCEInvalid:
			return oe(400, "invalid_grant", "Invalid code verifier.")
		case teRefresh:
			return oe(400, "invalid_grant", "Token has been expired or revoked.")
		default:
			return oe(400, "unsupported_grant_type", "Invalid grant_type: "+detail)
		}
	case OIDC:
		switch k {
		case teClientUnknown, teClientSecret, teHeaderOnly:
			return oe(401, "invalid_client", "Client authentication failed.")
		case teCode:
			return oe(400, "invalid_grant", "The authorization code is invalid, expired or already used.")
		case teRedirect:
			return oe(400, "invalid_grant", "The redirect_uri does not match the authorization request.")
		case tePKCEMissing, tePKCEInvalid, tePKCEUnexpected:
			return oe(400, "invalid_grant", "PKCE verification failed.")
		case teRefresh:
			return oe(400, "invalid_grant", "The refresh token is invalid, expired or revoked.")
		default:
			return oe(400, "unsupported_grant_type", "Unsupported grant_type: "+detail)
		}
	default: // OAuth2, Gitea-like: every error is HTTP 400
		switch k {
		case teClientUnknown, teHeaderOnly:
			return oe(400, "invalid_client", fmt.Sprintf("cannot load client with client id: '%s'", detail))
		case teClientSecret:
			return oe(400, "unauthorized_client", "invalid client secret")
		case teCode:
			return oe(400, "unauthorized_client", "client is not authorized")
		case teRedirect:
			return oe(400, "unauthorized_client", "unexpected redirect URI")
		case tePKCEMissing, tePKCEInvalid, tePKCEUnexpected:
			return oe(400, "unauthorized_client", "failed PKCE code challenge")
		case teRefresh:
			return oe(400, "unauthorized_client", "unable to parse refresh token")
		default:
			return oe(400, "unsupported_grant_type", "Only refresh_token or authorization_code grant type is supported")
		}
	}
}

func (e *Emulator) writeTokenError(w http.ResponseWriter, r *http.Request, k tokenErrKind, detail string) {
	status, body := e.tokenError(k, detail)
	if status == http.StatusUnauthorized && strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "basic ") {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	e.writeJSON(w, status, body, false)
}

func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	if e.kind == Naver {
		if !methodIn(r, http.MethodGet, http.MethodPost) {
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
			return
		}
	} else if !methodIn(r, http.MethodPost) {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	f := e.currentFaults()
	if !e.sleep(r.Context(), f.TokenDelay) {
		return
	}
	if f.TokenStatus != 0 {
		e.writeFault(w, "token", f.TokenStatus, f.TokenBody)
		return
	}
	// Naver reads parameters from the query or the body; the others only from
	// the form-encoded body.
	form := r.PostForm
	if e.kind == Naver {
		form = r.Form
	}
	clientID := form.Get("client_id")
	if clientID == "" && r.Header.Get("Authorization") != "" {
		// Every emulated provider is client_secret_post only: an
		// Authorization: Basic header alone does not identify the client.
		e.writeTokenError(w, r, teHeaderOnly, clientID)
		return
	}
	if clientID != e.opts.ClientID {
		e.writeTokenError(w, r, teClientUnknown, clientID)
		return
	}
	if e.opts.ClientSecret != "" && subtle.ConstantTimeCompare([]byte(form.Get("client_secret")), []byte(e.opts.ClientSecret)) != 1 {
		e.writeTokenError(w, r, teClientSecret, "")
		return
	}
	switch gt := form.Get("grant_type"); {
	case gt == "authorization_code":
		e.exchangeCode(w, r, form, f)
	case gt == "refresh_token":
		e.refreshGrant(w, r, form, f)
	case gt == "delete" && e.kind == Naver:
		e.naverDelete(w, form)
	default:
		e.writeTokenError(w, r, teGrantType, gt)
	}
}

func (e *Emulator) exchangeCode(w http.ResponseWriter, r *http.Request, form url.Values, f Faults) {
	code := form.Get("code")
	now := e.now()
	e.mu.Lock()
	c, ok := e.codes[code]
	if ok {
		delete(e.codes, code) // single use: any redemption attempt burns the code
	}
	e.mu.Unlock()
	if !ok || now.Sub(c.issued) >= codeTTL || c.req.clientID != form.Get("client_id") {
		e.writeTokenError(w, r, teCode, code)
		return
	}
	if e.kind == Naver {
		if form.Get("state") != c.req.state {
			e.writeTokenError(w, r, teState, "")
			return
		}
	} else {
		if form.Get("redirect_uri") != c.req.redirectURI {
			e.writeTokenError(w, r, teRedirect, "")
			return
		}
		verifier := form.Get("code_verifier")
		switch {
		case c.req.challenge == "" && verifier != "":
			e.writeTokenError(w, r, tePKCEUnexpected, "")
			return
		case c.req.challenge != "" && verifier == "":
			e.writeTokenError(w, r, tePKCEMissing, "")
			return
		case c.req.challenge != "" && !pkceMatches(c.req.method, c.req.challenge, verifier):
			e.writeTokenError(w, r, tePKCEInvalid, "")
			return
		}
	}
	g := &grant{
		user:     c.user,
		clientID: c.req.clientID,
		scopes:   c.req.scopes,
		nonce:    c.req.nonce,
		authTime: c.authTime,
		offline:  c.req.offline,
	}
	withRefresh := e.kind != Google || g.offline
	at, rt := e.issue(g, now, withRefresh)
	resp := e.tokenResponse(g, at, rt, now, f.IDToken, true)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	e.writeAnswer(w, r, "token", resp, f)
}

// issue stores a new access token (and, when asked, a new refresh token that
// replaces the grant's previous one).
func (e *Emulator) issue(g *grant, now time.Time, withRefresh bool) (at, rt string) {
	at = e.newAccessToken()
	if withRefresh {
		rt = e.newRefreshToken()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.access[at] = &accessToken{g: g, exp: now.Add(e.accessTTL())}
	if rt != "" {
		if g.refreshToken != "" {
			delete(e.refresh, g.refreshToken)
		}
		g.refreshToken = rt
		g.refreshExp = now.Add(e.refreshTTL())
		e.refresh[rt] = g
	}
	return at, rt
}

func (e *Emulator) newAccessToken() string {
	switch e.kind {
	case Google:
		return "ya29." + randToken(120)
	case Naver:
		return "AAAAO" + randAlnum(80)
	case Kakao:
		return randToken(40)
	default:
		return randToken(32)
	}
}

func (e *Emulator) newRefreshToken() string {
	switch e.kind {
	case Google:
		return "1//0" + randToken(72)
	case Naver:
		return randAlnum(60)
	default:
		return randToken(40)
	}
}

// tokenResponse builds the provider's success body. first is false for a
// refresh.
func (e *Emulator) tokenResponse(g *grant, at, rt string, now time.Time, fault IDTokenFault, first bool) map[string]any {
	ttl := int64(e.accessTTL() / time.Second)
	var m map[string]any
	switch e.kind {
	case Kakao:
		m = map[string]any{"token_type": "bearer", "access_token": at, "expires_in": ttl}
		if rt != "" {
			m["refresh_token"] = rt
			m["refresh_token_expires_in"] = int64(kakaoRefreshTTL / time.Second)
		}
		if first && len(g.scopes) > 0 {
			m["scope"] = strings.Join(g.scopes, " ")
		}
		if g.has("openid") {
			m["id_token"] = e.idTokenFor(g, at, now, fault, first)
		}
	case Naver:
		m = map[string]any{"access_token": at, "token_type": "bearer", "expires_in": fmt.Sprint(ttl)} // a string
		if rt != "" {
			m["refresh_token"] = rt
		}
	case Google:
		m = map[string]any{"access_token": at, "expires_in": ttl, "token_type": "Bearer", "scope": googleScopeString(g.scopes)}
		if rt != "" {
			m["refresh_token"] = rt
		}
		if g.has("openid") || g.has("email") || g.has("profile") {
			m["id_token"] = e.idTokenFor(g, at, now, fault, first)
		}
	case OIDC:
		m = map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": ttl, "scope": strings.Join(g.scopes, " ")}
		if rt != "" {
			m["refresh_token"] = rt
		}
		if g.has("openid") {
			m["id_token"] = e.idTokenFor(g, at, now, fault, first)
		}
	default:
		m = map[string]any{"access_token": at, "token_type": "bearer", "expires_in": ttl}
		if rt != "" {
			m["refresh_token"] = rt
		}
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

func (e *Emulator) refreshGrant(w http.ResponseWriter, r *http.Request, form url.Values, f Faults) {
	rt := form.Get("refresh_token")
	now := e.now()
	e.mu.Lock()
	g, ok := e.refresh[rt]
	valid := ok && !g.revoked && now.Before(g.refreshExp) && g.clientID == form.Get("client_id")
	rotate := false
	if valid {
		switch e.kind {
		case Kakao: // a new refresh token only when less than a month is left
			rotate = g.refreshExp.Sub(now) < 30*24*time.Hour
		case OIDC, OAuth2:
			rotate = true
		}
	}
	e.mu.Unlock()
	if !valid {
		e.writeTokenError(w, r, teRefresh, "")
		return
	}
	at, newRT := e.issue(g, now, rotate)
	resp := e.tokenResponse(g, at, newRT, now, f.IDToken, false)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	e.writeAnswer(w, r, "token", resp, f)
}

// naverDelete is Naver's legacy token deletion: grant_type=delete on the
// token endpoint.
func (e *Emulator) naverDelete(w http.ResponseWriter, form url.Values) {
	at := form.Get("access_token")
	e.mu.Lock()
	t, ok := e.access[at]
	if ok {
		t.g.revoked = true
	}
	e.mu.Unlock()
	if !ok {
		e.writeJSON(w, http.StatusOK, map[string]any{"error": "invalid_request", "error_description": "no valid data in session"}, false)
		return
	}
	e.writeJSON(w, http.StatusOK, map[string]any{"access_token": at, "result": "success"}, false)
}
