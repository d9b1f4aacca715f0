package fakeidp

import (
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

func (e *Emulator) writeTokenError(w http.ResponseWriter, r *http.Request, k tokenErrKind, detail string) {
	status, body := e.d.tokenError(k, detail)
	if status == http.StatusUnauthorized && strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "basic ") {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	e.writeJSON(w, status, body, false)
}

func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	if methods := e.d.tokenMethods(); !methodIn(r, methods...) {
		methodNotAllowed(w, methods...)
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
	form := e.d.tokenForm(r) // the form-encoded body (Naver: also the query)
	if k, detail, ok := e.d.authenticateClient(e, r, form); !ok {
		e.writeTokenError(w, r, k, detail)
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		e.exchangeCode(w, r, form, f)
	case "refresh_token":
		e.refreshGrant(w, r, form, f)
	default:
		if !e.d.otherGrant(e, w, gt, form) {
			e.writeTokenError(w, r, teGrantType, gt)
		}
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
	if k, ok := e.d.checkCode(form, c); !ok {
		e.writeTokenError(w, r, k, "")
		return
	}
	g := &grant{
		user:     c.user,
		clientID: c.req.clientID,
		scopes:   c.req.scopes,
		nonce:    c.req.nonce,
		authTime: c.authTime,
		offline:  c.req.offline,
	}
	at, rt := e.issue(g, now, e.d.withRefresh(g))
	resp := e.d.tokenResponse(e, g, at, rt, now, f.IDToken, true)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	e.writeAnswer(w, r, "token", resp, f)
}

// issue stores a new access token (and, when asked, a new refresh token that
// replaces the grant's previous one).
func (e *Emulator) issue(g *grant, now time.Time, withRefresh bool) (at, rt string) {
	at = e.d.newAccessToken()
	if withRefresh {
		rt = e.d.newRefreshToken()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.access[at] = &accessToken{g: g, exp: now.Add(e.d.accessTTL())}
	if rt != "" {
		if g.refreshToken != "" {
			delete(e.refresh, g.refreshToken)
		}
		g.refreshToken = rt
		g.refreshExp = now.Add(e.d.refreshTTL())
		e.refresh[rt] = g
	}
	return at, rt
}

func (e *Emulator) refreshGrant(w http.ResponseWriter, r *http.Request, form url.Values, f Faults) {
	rt := form.Get("refresh_token")
	now := e.now()
	e.mu.Lock()
	g, ok := e.refresh[rt]
	valid := ok && !g.revoked && now.Before(g.refreshExp) && g.clientID == form.Get("client_id")
	rotate := valid && e.d.rotateRefresh(g, now)
	e.mu.Unlock()
	if !valid {
		e.writeTokenError(w, r, teRefresh, "")
		return
	}
	at, newRT := e.issue(g, now, rotate)
	resp := e.d.tokenResponse(e, g, at, newRT, now, f.IDToken, false)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	e.writeAnswer(w, r, "token", resp, f)
}
