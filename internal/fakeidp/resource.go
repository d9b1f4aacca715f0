package fakeidp

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"
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
	allowed := []string{http.MethodGet, http.MethodPost}
	if e.kind == OAuth2 {
		allowed = []string{http.MethodGet}
	}
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
	var body any
	switch {
	case e.kind == Kakao && r.URL.Path == e.p.oidcUserinfo:
		body = kakaoOIDCUserinfo(g)
	case e.kind == Kakao:
		e.mu.Lock()
		connected, ok := e.linked[g.user.Subject]
		e.mu.Unlock()
		if !ok {
			connected = g.authTime
		}
		body = kakaoMe(g, connected)
	case e.kind == Naver:
		body = naverMe(g)
	case e.kind == Google:
		body = standardUserinfo(g, false)
	case e.kind == OIDC:
		body = standardUserinfo(g, true)
	default:
		body = giteaUser(g)
	}
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	e.writeAnswer(w, r, "userinfo", body, f)
}

func (e *Emulator) writeUserinfoAuthError(w http.ResponseWriter, st tokenState) {
	switch e.kind {
	case Kakao:
		msg := "this access token does not exist"
		if st == tokenExpired {
			msg = "this access token is already expired"
		}
		e.writeJSON(w, http.StatusUnauthorized, kakaoAPIError(-401, msg), false)
	case Naver:
		e.writeJSON(w, http.StatusUnauthorized, naverAuthFailed(), false)
	case OAuth2:
		e.writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "token is required", "url": e.base + "/api/swagger"}, false)
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="userinfo", error="invalid_token"`)
		e.writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token", "error_description": "Invalid Credentials"}, false)
	}
}

// kakaoMe is the body of GET /v2/user/me. The id is a JSON number written
// digit for digit (json.Number), so ids above 2^53 survive.
func kakaoMe(g *grant, connectedAt time.Time) map[string]any {
	u := g.user
	acct := map[string]any{}
	profile := map[string]any{}
	props := map[string]any{}
	nick, img := g.has("profile_nickname"), g.has("profile_image")
	acct["profile_nickname_needs_agreement"] = !nick
	acct["profile_image_needs_agreement"] = !img
	if nick {
		profile["nickname"] = u.Nickname
		profile["is_default_nickname"] = false
		props["nickname"] = u.Nickname
	}
	if img {
		if u.Picture != "" {
			profile["thumbnail_image_url"] = u.Picture
			profile["profile_image_url"] = u.Picture
			props["profile_image"] = u.Picture
			props["thumbnail_image"] = u.Picture
		}
		profile["is_default_image"] = u.Picture == ""
	}
	if len(profile) > 0 {
		acct["profile"] = profile
	}
	if g.has("account_email") {
		if u.Email != "" {
			acct["email_needs_agreement"] = false
			acct["has_email"] = true
			acct["is_email_valid"] = true
			acct["is_email_verified"] = u.EmailVerified
			acct["email"] = u.Email
		} else { // asked for, but the user declined the optional item
			acct["email_needs_agreement"] = true
			acct["has_email"] = true
		}
	}
	if g.has("name") && u.Name != "" {
		acct["name_needs_agreement"] = false
		acct["name"] = u.Name
	}
	out := map[string]any{
		"id":            json.Number(u.Subject),
		"connected_at":  connectedAt.UTC().Format(time.RFC3339),
		"kakao_account": acct,
	}
	if len(props) > 0 {
		out["properties"] = props
	}
	return out
}

// kakaoOIDCUserinfo is the body of Kakao's /v1/oidc/userinfo.
func kakaoOIDCUserinfo(g *grant) map[string]any {
	u := g.user
	m := map[string]any{"sub": u.Subject}
	if g.has("profile_nickname") && u.Nickname != "" {
		m["nickname"] = u.Nickname
	}
	if g.has("profile_image") && u.Picture != "" {
		m["picture"] = u.Picture
	}
	if g.has("account_email") && u.Email != "" {
		m["email"] = u.Email
		m["email_verified"] = u.EmailVerified
	}
	return m
}

func naverMe(g *grant) map[string]any {
	u := g.user
	resp := map[string]any{"id": u.Subject}
	for k, v := range map[string]string{"nickname": u.Nickname, "name": u.Name, "email": u.Email, "profile_image": u.Picture} {
		if v != "" {
			resp[k] = v
		}
	}
	return map[string]any{"resultcode": "00", "message": "success", "response": resp}
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

// giteaUser is the body of Gitea's GET /api/v1/user.
func giteaUser(g *grant) map[string]any {
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
	switch e.kind {
	case Kakao:
		e.kakaoUnlink(w, r)
	case Naver:
		e.naverRevoke(w, r)
	default:
		e.googleRevoke(w, r)
	}
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

// googleRevoke: POST /revoke with token= (an access or a refresh token; the
// whole grant goes). 200 {} or 400 invalid_token.
func (e *Emulator) googleRevoke(w http.ResponseWriter, r *http.Request) {
	if !e.revokeToken(r.Form.Get("token")) {
		e.writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_token", "error_description": "Token expired or revoked"}, false)
		return
	}
	e.writeJSON(w, http.StatusOK, map[string]any{}, false)
}

// naverRevoke: POST /oauth2.0/revoke with client_id, client_secret, token,
// token_type_hint. 200 with an empty body; the token pair stops working.
func (e *Emulator) naverRevoke(w http.ResponseWriter, r *http.Request) {
	form := r.Form
	if form.Get("client_id") != e.opts.ClientID ||
		(e.opts.ClientSecret != "" && subtle.ConstantTimeCompare([]byte(form.Get("client_secret")), []byte(e.opts.ClientSecret)) != 1) {
		e.writeJSON(w, http.StatusOK, map[string]any{"error": "invalid_request", "error_description": "wrong client id / client secret pair"}, false)
		return
	}
	e.revokeToken(form.Get("token"))
	w.WriteHeader(http.StatusOK)
}

// kakaoUnlink: POST /v1/user/unlink, either with the admin key
// (Authorization: KakaoAK <key>, target_id_type=user_id, target_id=<id>) or
// with the user's access token. All the user's tokens expire.
func (e *Emulator) kakaoUnlink(w http.ResponseWriter, r *http.Request) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	var subject string
	switch {
	case strings.EqualFold(scheme, "KakaoAK"):
		if e.opts.AdminKey == "" || subtle.ConstantTimeCompare([]byte(cred), []byte(e.opts.AdminKey)) != 1 {
			e.writeJSON(w, http.StatusUnauthorized, kakaoAPIError(-401, "wrong appKey type or the admin key does not exist"), false)
			return
		}
		if r.PostForm.Get("target_id_type") != "user_id" || !isJSONInteger(r.PostForm.Get("target_id")) {
			e.writeJSON(w, http.StatusBadRequest, kakaoAPIError(-2, "target_id_type must be user_id and target_id a user id"), false)
			return
		}
		subject = r.PostForm.Get("target_id")
	case strings.EqualFold(scheme, "Bearer"):
		g, st := e.lookupAccess(cred)
		if st != tokenOK {
			e.writeUserinfoAuthError(w, st)
			return
		}
		subject = g.user.Subject
	default:
		e.writeJSON(w, http.StatusUnauthorized, kakaoAPIError(-401, "this access token does not exist"), false)
		return
	}
	e.mu.Lock()
	_, linked := e.linked[subject]
	if linked {
		delete(e.linked, subject)
		e.revokeSubjectLocked(subject)
	}
	e.mu.Unlock()
	if !linked {
		e.writeJSON(w, http.StatusBadRequest, kakaoAPIError(-101, "NotRegisteredUserException"), false)
		return
	}
	e.writeJSON(w, http.StatusOK, map[string]any{"id": json.Number(subject)}, false)
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

// handleKakaoLogout: POST /v1/user/logout with a Bearer token expires that
// grant's tokens and answers {"id":<id>}.
func (e *Emulator) handleKakaoLogout(w http.ResponseWriter, r *http.Request) {
	if !methodIn(r, http.MethodPost) {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	tok := bearerToken(r)
	g, st := e.lookupAccess(tok)
	if st != tokenOK {
		e.writeUserinfoAuthError(w, st)
		return
	}
	e.mu.Lock()
	g.revoked = true
	e.mu.Unlock()
	e.writeJSON(w, http.StatusOK, map[string]any{"id": json.Number(g.user.Subject)}, false)
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
		"code_challenge_methods_supported":      e.pkceMethods(),
	}
	switch e.kind {
	case Kakao:
		m["userinfo_endpoint"] = b + e.p.oidcUserinfo
		m["request_uri_parameter_supported"] = false
		m["claims_supported"] = []string{"iss", "aud", "sub", "iat", "exp", "auth_time", "nonce", "nickname", "picture", "email"}
	case Google:
		m["userinfo_endpoint"] = b + e.p.userinfo
		m["revocation_endpoint"] = b + e.p.revoke
		m["scopes_supported"] = []string{"openid", "email", "profile"}
		m["claims_supported"] = []string{"aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"}
	default:
		m["userinfo_endpoint"] = b + e.p.userinfo
		m["revocation_endpoint"] = b + e.p.revoke
		m["scopes_supported"] = []string{"openid", "email", "profile", "offline_access"}
		m["claims_supported"] = []string{"iss", "aud", "sub", "iat", "exp", "auth_time", "nonce", "at_hash", "email", "email_verified", "name", "preferred_username", "picture"}
	}
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
