package fakeidp

import (
	"encoding/json"
	"net/http"
	"strings"
)

type tokenState int

const (
	tokenMissing tokenState = iota
	tokenUnknown            // never issued, or revoked
	tokenExpired
	tokenOK
)

// lookupAccess finds the grant of an access token.
func (e *Emulator) lookupAccess(tok string) (*grant, tokenState) {
	if tok == "" {
		return nil, tokenMissing
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.access[tok]
	switch {
	case !ok || t.g.revoked:
		return nil, tokenUnknown
	case !now.Before(t.exp):
		return nil, tokenExpired
	}
	return t.g, tokenOK
}

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (e *Emulator) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	allowed := e.d.userinfoMethods()
	if !methodIn(r, allowed...) {
		methodNotAllowed(w, allowed...)
		return
	}
	f := e.currentFaults()
	if !e.sleep(r.Context(), f.UserinfoDelay) {
		return
	}
	if f.UserinfoStatus != 0 {
		e.writeFault(w, "userinfo", f.UserinfoStatus, f.UserinfoBody)
		return
	}
	g, st := e.lookupAccess(bearerToken(r))
	if st != tokenOK {
		e.writeUserinfoAuthError(w, st)
		return
	}
	body := e.d.userinfo(e, r, g)
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	e.writeAnswer(w, r, "userinfo", body, f)
}

func (e *Emulator) writeUserinfoAuthError(w http.ResponseWriter, st tokenState) {
	e.d.userinfoAuthError(e, w, st)
}

// ---- revocation ----

func (e *Emulator) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if !methodIn(r, http.MethodPost) {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	if f := e.currentFaults(); f.RevokeStatus != 0 {
		e.writeFault(w, "revoke", f.RevokeStatus, f.RevokeBody)
		return
	}
	e.d.revoke(e, w, r)
}

// revokeToken revokes the grant of an access or refresh token.
func (e *Emulator) revokeToken(tok string) bool {
	if tok == "" {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.access[tok]; ok && !t.g.revoked {
		t.g.revoked = true
		return true
	}
	if g, ok := e.refresh[tok]; ok && !g.revoked {
		g.revoked = true
		return true
	}
	return false
}

func (e *Emulator) revokeSubjectLocked(subject string) {
	for _, t := range e.access {
		if t.g.user.Subject == subject {
			t.g.revoked = true
		}
	}
	for _, g := range e.refresh {
		if g.user.Subject == subject {
			g.revoked = true
		}
	}
}

// ---- discovery and keys ----

func (e *Emulator) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	if !methodIn(r, http.MethodGet) {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	b := e.base
	m := map[string]any{
		"issuer":                                b,
		"authorization_endpoint":                b + e.p.authorize,
		"token_endpoint":                        b + e.p.token,
		"jwks_uri":                              b + e.p.jwks,
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
		"code_challenge_methods_supported":      e.d.pkceMethods(),
	}
	e.d.discovery(e, m)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	e.writeJSON(w, http.StatusOK, m, false)
}

func (e *Emulator) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if !methodIn(r, http.MethodGet) {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	e.mu.Lock()
	e.jwksFetches++
	keys := make([]json.RawMessage, 0, len(e.keys))
	for _, k := range e.keys {
		keys = append(keys, k.publicJSON)
	}
	e.mu.Unlock()
	w.Header().Set("Cache-Control", "public, max-age=3600, must-revalidate, no-transform")
	e.writeJSON(w, http.StatusOK, map[string]any{"keys": keys}, false)
}

// handleAttacker serves the attacker's key where forged tokens point: a
// JWKS at the jku of JKUHeader tokens, a self-signed certificate at the x5u
// of X5UHeader tokens. Fetches are counted (AttackerJWKSFetches): a broker
// must never make one.
func (e *Emulator) handleAttacker(w http.ResponseWriter, r *http.Request) {
	if !methodIn(r, http.MethodGet) {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	e.mu.Lock()
	e.attackerFetches++
	k := e.attackerLocked()
	if r.URL.Path == attackerCertPath && e.attackerCert == nil {
		e.attackerCert = selfSignedPEM(k, e.now())
	}
	cert := e.attackerCert
	e.mu.Unlock()
	if r.URL.Path == attackerCertPath {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(cert)
		return
	}
	e.writeJSON(w, http.StatusOK, map[string]any{"keys": []json.RawMessage{k.publicJSON}}, false)
}
