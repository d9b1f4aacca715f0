package fakeidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Sign in with Apple: scopes name and email (space-separated, optional),
// response_mode=form_post required with scopes (the page POSTs code, state,
// id_token and, on the first consent only, user), no userinfo endpoint, a
// client secret that is an ES256 JWT signed with the team's key (verified
// like Apple does: signature, kid, iss, aud, sub, exp − iat ≤ 15,777,000 s),
// single-use codes for the Services ID or for a bundle ID (native codes),
// email_verified and is_private_email as strings in web id_tokens, revoke,
// and signed server-to-server notifications.
type appleDialect struct{ standard }

// Apple is the Kind of this dialect.
const Apple Kind = "apple"

func init() { dialects[Apple] = appleDialect{} }

// appleMaxSecretLife is the longest client secret Apple accepts.
const appleMaxSecretLife = 15777000

// appleState is an Apple emulator's own state: the team's key, made as
// Apple's developer portal makes a .p8 key.
type appleState struct {
	teamID, keyID string
	key           *ecdsa.PrivateKey
	pem           string // PKCS#8 PEM of key
}

func (appleDialect) setup(e *Emulator) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("emulator: generating the Apple key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	e.ext = &appleState{
		teamID: strings.ToUpper(randAlnum(10)),
		keyID:  strings.ToUpper(randAlnum(10)),
		key:    k,
		pem:    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
	}
	return nil
}

func (e *Emulator) apple() *appleState { return e.ext.(*appleState) }

func (appleDialect) paths() paths {
	return paths{authorize: "/auth/authorize", consent: "/auth/consent", token: "/auth/token",
		jwks: "/auth/keys", discovery: "/.well-known/openid-configuration", revoke: "/auth/revoke"}
}

func (appleDialect) oidc() bool { return true }

func (appleDialect) defaultUser() User {
	return User{Subject: "001234.5f1c2e3d4b5a69788796a5b4c3d2e1f0.1234", Email: "q8x2k7m4pz@privaterelay.appleid.com",
		EmailVerified: true, Name: "Alex Appleseed"}
}

// providerConfig: the team's key, team and key IDs, scopes name and email;
// no client_secret (the broker mints it).
func (appleDialect) providerConfig(e *Emulator, m map[string]any, _ bool) {
	a := e.apple()
	delete(m, "client_secret")
	m["team_id"], m["key_id"], m["private_key"] = a.teamID, a.keyID, a.pem
	m["scopes"] = []string{"name", "email"}
}

// ---- authorize ----

func (appleDialect) invalidClient(string) *authzError {
	return &authzError{page: true, status: 400, code: "invalid_client", desc: "Invalid client id or web redirect url."}
}

func (appleDialect) redirectMismatch(string) *authzError {
	return &authzError{page: true, status: 400, code: "invalid_request", desc: "Invalid web redirect url."}
}

func (appleDialect) badResponseType(string) *authzError {
	return &authzError{page: true, status: 400, code: "unsupported_response_type", desc: "Invalid response_type."}
}

func (appleDialect) parseScopes(raw string) ([]string, *authzError) {
	var out []string
	for _, it := range strings.Fields(raw) {
		if it != "name" && it != "email" {
			return nil, &authzError{page: true, status: 400, code: "invalid_scope", desc: "Invalid scope: " + it}
		}
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out, nil
}

// authorizeParams: response_mode (form_post required with scopes); Apple
// takes no PKCE.
func (appleDialect) authorizeParams(_ *Emulator, q url.Values, req *authRequest) *authzError {
	switch mode := q.Get("response_mode"); mode {
	case "form_post":
		req.formPost = true
	case "", "query", "fragment":
		if len(req.scopes) > 0 {
			return &authzError{page: true, status: 400, code: "invalid_request", desc: "response_mode must be form_post when name or email scope is requested."}
		}
	default:
		return &authzError{page: true, status: 400, code: "invalid_request", desc: "Invalid response_mode."}
	}
	return nil
}

func (appleDialect) newCode() string {
	return "c" + strings.ToLower(randAlnum(32)) + ".0.nrq." + randToken(16)
}
func (appleDialect) denied() string     { return "" }
func (appleDialect) deniedCode() string { return "user_cancelled_authorize" }

func (appleDialect) consent(p *consentPage, req *authRequest, u User) {
	p.Lang, p.Title, p.Brand, p.Color = "en", "Sign in with Apple", "Apple", "#000"
	p.Greeting = "Use your Apple ID (" + u.Email + ") to sign in to " + p.App + "."
	p.ItemsHeading = "Shared with " + p.App + ":"
	for _, s := range req.scopes {
		switch s {
		case "name":
			p.Items = append(p.Items, "Name: "+u.Name)
		case "email":
			p.Items = append(p.Items, "Email: "+u.Email)
		}
	}
	p.ApproveLabel, p.DenyLabel = "Continue", "Cancel"
}

// approved adds, on a form_post answer, the id_token and, on the user's
// first consent to the app only, user with the name and email asked for.
func (appleDialect) approved(e *Emulator, req *authRequest, u User, first bool, v url.Values) {
	if !req.formPost {
		return
	}
	g := &grant{user: u, clientID: req.clientID, scopes: req.scopes, nonce: req.nonce, authTime: e.now()}
	v.Set("id_token", e.idTokenFor(g, "", e.now(), e.currentFaults().IDToken, true))
	if !first {
		return
	}
	user := map[string]any{}
	if slices.Contains(req.scopes, "name") && u.Name != "" {
		first, last, _ := strings.Cut(u.Name, " ")
		user["name"] = map[string]string{"firstName": first, "lastName": last}
	}
	if slices.Contains(req.scopes, "email") && u.Email != "" {
		user["email"] = u.Email
	}
	if len(user) > 0 {
		b, _ := json.Marshal(user)
		v.Set("user", string(b))
	}
}

// ---- token ----

// authenticateClient: client_id is the Services ID or a bundle ID, and
// client_secret an ES256 JWT of the team's key for it.
func (appleDialect) authenticateClient(e *Emulator, _ *http.Request, form url.Values) (tokenErrKind, string, bool) {
	clientID := form.Get("client_id")
	if clientID != e.opts.ClientID && !slices.Contains(e.opts.ExtraAudiences, clientID) {
		return teClientUnknown, clientID, false
	}
	if err := e.checkAppleSecret(form.Get("client_secret"), clientID); err != nil {
		return teClientSecret, err.Error(), false
	}
	return 0, "", true
}

// checkAppleSecret verifies a client secret as Apple does.
func (e *Emulator) checkAppleSecret(secret, clientID string) error {
	a := e.apple()
	jws, err := jose.ParseSigned(secret, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		return fmt.Errorf("not an ES256 JWT")
	}
	if kid := jws.Signatures[0].Protected.KeyID; kid != a.keyID {
		return fmt.Errorf("kid %q is not the key's", kid)
	}
	payload, err := jws.Verify(&a.key.PublicKey)
	if err != nil {
		return fmt.Errorf("signature")
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud any    `json:"aud"`
		Iat int64  `json:"iat"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return fmt.Errorf("claims")
	}
	now := e.now().Unix()
	aud, _ := c.Aud.(string)
	if l, ok := c.Aud.([]any); ok && len(l) == 1 {
		aud, _ = l[0].(string)
	}
	switch {
	case c.Iss != a.teamID:
		return fmt.Errorf("iss is not the team")
	case aud != "https://appleid.apple.com":
		return fmt.Errorf("aud")
	case c.Sub != clientID:
		return fmt.Errorf("sub is not the client_id")
	case c.Iat == 0 || c.Iat > now+60:
		return fmt.Errorf("iat")
	case c.Exp <= now:
		return fmt.Errorf("expired")
	case c.Exp-c.Iat > appleMaxSecretLife:
		return fmt.Errorf("exp - iat over %d s", appleMaxSecretLife)
	}
	return nil
}

func (appleDialect) rotateRefresh(*grant, time.Time) bool { return false }
func (appleDialect) newAccessToken() string {
	return "a" + strings.ToLower(randAlnum(32)) + ".0.nrq." + randToken(16)
}
func (appleDialect) newRefreshToken() string {
	return "r" + strings.ToLower(randAlnum(32)) + ".0.nrq." + randToken(16)
}

func (appleDialect) tokenError(k tokenErrKind, _ string) (int, map[string]any) {
	switch k {
	case teClientUnknown, teClientSecret, teHeaderOnly:
		return 400, map[string]any{"error": "invalid_client"}
	case teCode, teRedirect, tePKCEMissing, tePKCEInvalid, tePKCEUnexpected, teRefresh:
		return 400, map[string]any{"error": "invalid_grant"}
	default:
		return 400, map[string]any{"error": "unsupported_grant_type"}
	}
}

func (d appleDialect) tokenResponse(e *Emulator, g *grant, at, rt string, now time.Time, fault IDTokenFault, first bool) map[string]any {
	m := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int64(d.accessTTL() / time.Second)}
	if rt != "" {
		m["refresh_token"] = rt
	}
	m["id_token"] = e.idTokenFor(g, at, now, fault, first)
	return m
}

// idTokenClaims: Apple's claims; email_verified and is_private_email as
// the strings "true"/"false", as web id_tokens carry them.
func (appleDialect) idTokenClaims(c map[string]any, g *grant, accessToken string, _ time.Time) {
	c["auth_time"] = g.authTime.Unix()
	c["nonce_supported"] = true
	if accessToken != "" {
		c["at_hash"] = atHash(accessToken)
	}
	if g.has("email") && g.user.Email != "" {
		c["email"] = g.user.Email
		c["email_verified"] = fmt.Sprint(g.user.EmailVerified)
		c["is_private_email"] = fmt.Sprint(isPrivateRelay(g.user.Email))
	}
}

func isPrivateRelay(email string) bool {
	return strings.HasSuffix(email, "@privaterelay.appleid.com")
}

// ---- resources ----

func (appleDialect) userinfo(*Emulator, *http.Request, *grant) any { return map[string]any{} }

// revoke is Apple's: client_id and client_secret as at the token endpoint,
// token and token_type_hint; 200 with an empty body. The app's grant ends,
// so the next consent is a first one again (user is sent).
func (d appleDialect) revoke(e *Emulator, w http.ResponseWriter, r *http.Request) {
	form := r.PostForm
	if k, _, ok := d.authenticateClient(e, r, form); !ok {
		status, body := d.tokenError(k, "")
		e.writeJSON(w, status, body, false)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		e.writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"}, false)
		return
	}
	e.mu.Lock()
	var g *grant
	if t, ok := e.access[tok]; ok {
		g = t.g
	} else if rg, ok := e.refresh[tok]; ok {
		g = rg
	}
	if g != nil && g.clientID == form.Get("client_id") {
		g.revoked = true
		delete(e.linked, g.user.Subject)
	}
	e.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (appleDialect) discovery(_ *Emulator, m map[string]any) {
	m["response_modes_supported"] = []string{"query", "fragment", "form_post"}
	m["scopes_supported"] = []string{"openid", "email", "name"}
	m["token_endpoint_auth_methods_supported"] = []string{"client_secret_post"}
	m["claims_supported"] = []string{"aud", "email", "email_verified", "exp", "iat", "is_private_email", "iss", "nonce", "nonce_supported", "real_user_status", "sub", "transfer_sub"}
	delete(m, "code_challenge_methods_supported")
}

// ---- native apps and notifications ----

// MintAppleNative is what the iOS AuthenticationServices framework hands
// an app after Sign in with Apple: an id_token whose aud is bundleID (one
// of ExtraAudiences) and a one-time authorization code for that bundle ID,
// redeemable at the token endpoint for five minutes. Native id_tokens
// carry email_verified and is_private_email as booleans. claims override
// the token's claims; the current IDToken fault applies.
func (e *Emulator) MintAppleNative(bundleID string, claims map[string]any) (idToken, code string) {
	u := e.currentUser()
	now := e.now()
	c := map[string]any{"aud": bundleID, "auth_time": now.Unix(), "nonce_supported": true}
	if u.Email != "" {
		c["email"], c["email_verified"], c["is_private_email"] = u.Email, u.EmailVerified, isPrivateRelay(u.Email)
	}
	for k, v := range claims {
		c[k] = v
	}
	code = e.d.newCode()
	e.mu.Lock()
	e.codes[code] = &authCode{req: &authRequest{clientID: bundleID, scopes: []string{"email"}, created: now}, user: u, issued: now, authTime: now}
	if _, linked := e.linked[u.Subject]; !linked {
		e.linked[u.Subject] = now
	}
	e.mu.Unlock()
	return e.MintIDToken(c), code
}

// AppleEvent is one server-to-server notification.
type AppleEvent struct {
	Type           string // consent-revoked, account-delete, email-disabled, email-enabled, …
	Subject        string // default: the current user's
	Email          string
	IsPrivateEmail *bool
	Time           time.Time // event_time; default now
	Audience       string    // aud; default ClientID
	EventsAsObject bool      // events as a JSON object instead of Apple's JSON string
}

// AppleNotification is the body Apple POSTs to the notification endpoint:
// {"payload":"<JWS>"}, signed with the emulator's key (iss, aud, iat, jti,
// events), with fault applied (BadSignature, WrongIssuer, WrongAudience,
// Expired, AttackerKey, … as for id_tokens). An honest consent-revoked or
// account-delete also ends the user's grants here, as at Apple.
func (e *Emulator) AppleNotification(ev AppleEvent, fault IDTokenFault) []byte {
	now := e.now()
	if ev.Subject == "" {
		ev.Subject = e.currentUser().Subject
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	if ev.Audience == "" {
		ev.Audience = e.opts.ClientID
	}
	event := map[string]any{"type": ev.Type, "sub": ev.Subject, "event_time": ev.Time.UnixMilli()}
	if ev.Email != "" {
		event["email"] = ev.Email
	}
	if ev.IsPrivateEmail != nil {
		event["is_private_email"] = fmt.Sprint(*ev.IsPrivateEmail)
	}
	var events any = event
	if !ev.EventsAsObject {
		b, _ := json.Marshal(event)
		events = string(b)
	}
	c := map[string]any{"iss": e.base, "aud": ev.Audience, "iat": now.Unix(), "jti": randToken(16), "events": events}
	payload := e.signIDToken(c, fault)
	if fault == IDTokenHonest && (ev.Type == "consent-revoked" || ev.Type == "account-delete" || ev.Type == "account-deleted") {
		e.mu.Lock()
		e.revokeSubjectLocked(ev.Subject)
		delete(e.linked, ev.Subject)
		e.mu.Unlock()
	}
	b, _ := json.Marshal(map[string]string{"payload": payload})
	return b
}

// AppleKey returns the team ID, key ID and .p8 key (PKCS#8 PEM) the
// broker's config needs (ProviderConfig has them too).
func (e *Emulator) AppleKey() (teamID, keyID, privateKeyPEM string) {
	a := e.apple()
	return a.teamID, a.keyID, a.pem
}
