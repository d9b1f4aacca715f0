package providers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// Apple's production endpoints, each replaceable from config.
const (
	appleIssuer    = "https://appleid.apple.com"
	appleAuthURL   = appleIssuer + "/auth/authorize"
	appleTokenURL  = appleIssuer + "/auth/token"
	appleJWKSURL   = appleIssuer + "/auth/keys"
	appleRevokeURL = appleIssuer + "/auth/revoke"
)

const (
	// appleSecretLife is how long a minted client secret is valid (Apple
	// allows up to 15,777,000 s; short-lived secrets never expire in
	// production unnoticed).
	appleSecretLife = time.Hour
	// appleSecretRenew is how long before its exp a cached secret is
	// replaced, so no request carries one about to expire.
	appleSecretRenew = 10 * time.Minute
	// appleNotificationMaxAge bounds the age of a notification without exp.
	appleNotificationMaxAge = 72 * time.Hour
	// appleMaxUser caps the posted `user` JSON.
	appleMaxUser = 4 << 10
)

// apple is Sign in with Apple: the client secret is an ES256 JWT minted
// from the team's .p8 key (sub = the client id of the request: the
// Services ID on the web, a bundle ID for codes of a native app), the
// callback is a cross-site form_post whenever scopes are asked, the name
// comes only in the first authorization's `user` form field, and Apple
// calls back about its users with signed server-to-server notifications.
type apple struct {
	*base
	authURL, tokenURL, revokeURL string
	issuer                       string
	audiences                    []string // client_id, then accept_audiences
	teamID, keyID                string
	key                          *ecdsa.PrivateKey
	keys                         *keySet
	ids                          *idVerifier

	mu      sync.Mutex
	secrets map[string]appleSecret // by sub
}

type appleSecret struct {
	jwt   string
	renew time.Time
}

var (
	_ Provider             = (*apple)(nil)
	_ IDTokenVerifier      = (*apple)(nil)
	_ Revoker              = (*apple)(nil)
	_ NotificationReceiver = (*apple)(nil)
	_ FormPostReader       = (*apple)(nil)
	_ NativeCodeRedeemer   = (*apple)(nil)
)

func init() {
	register("apple", preset{config: func() presetConfig { return &appleConfig{} }, displayName: "Apple"})
}

// appleConfig is a `type: apple` entry. client_id is the Services ID;
// accept_audiences are the bundle IDs of the iOS apps.
type appleConfig struct {
	Common           `yaml:",inline"`
	Endpoints        `yaml:",inline"`
	IDTokenEndpoints `yaml:",inline"`
	TeamID           string `yaml:"team_id"`
	KeyID            string `yaml:"key_id"`
	PrivateKey       string `yaml:"private_key"` // the .p8 file: PEM, PKCS#8, EC P-256

	key *ecdsa.PrivateKey // parsed by check
}

// appleScopes are the scopes Apple knows.
var appleScopes = []string{"name", "email"}

func (c *appleConfig) check(ck checker) {
	c.Endpoints.checkURLs(ck)
	c.IDTokenEndpoints.checkURLs(ck)
	ck.required("type apple", "team_id", c.TeamID, "key_id", c.KeyID, "private_key", c.PrivateKey)
	if c.ClientSecret != "" {
		ck.add("client_secret", "not used by type apple: the broker mints its client secret from private_key")
	}
	if c.UserinfoURL != "" {
		ck.add("userinfo_url", "Apple has no userinfo endpoint")
	}
	for i, s := range c.Scopes {
		if !slices.Contains(appleScopes, s) {
			ck.add(fmt.Sprintf("scopes[%d]", i), "%q is not an Apple scope (name, email)", s)
		}
	}
	if c.PrivateKey != "" {
		key, err := parseAppleKey(c.PrivateKey)
		if err != nil {
			ck.add("private_key", "%v", err)
		}
		c.key = key
	}
}

// parseAppleKey reads a .p8 key: PEM (literal "\n" escapes, as env files
// often hold it, are accepted), PKCS#8, EC P-256.
func parseAppleKey(s string) (*ecdsa.PrivateKey, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "\n") && strings.Contains(s, `\n`) {
		s = strings.ReplaceAll(s, `\n`, "\n")
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM key (paste the .p8 file as is: -----BEGIN PRIVATE KEY----- …)")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("a PEM %q block; want the .p8 file's PKCS#8 \"PRIVATE KEY\"", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKCS#8 private key")
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T; Apple's keys are EC P-256 (ES256)", k)
	}
	if ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("an EC key on %s; Apple's keys are P-256 (ES256)", ec.Curve.Params().Name)
	}
	return ec, nil
}

func (c *appleConfig) build(b *base) Provider {
	a := &apple{
		base:      b,
		authURL:   or(c.AuthURL, appleAuthURL),
		tokenURL:  or(c.TokenURL, appleTokenURL),
		revokeURL: or(c.RevokeURL, appleRevokeURL),
		issuer:    or(c.Issuer, appleIssuer),
		audiences: append([]string{c.ClientID}, c.AcceptAudiences...),
		teamID:    c.TeamID,
		keyID:     c.KeyID,
		key:       c.key,
		secrets:   map[string]appleSecret{},
	}
	b.info.Nonce = true
	jwks := or(c.JWKSURL, appleJWKSURL)
	a.keys = &keySet{h: b.h, url: func(context.Context) (string, error) { return jwks, nil }}
	a.ids = newIDVerifier(a.issuer, a.keys, c.ClientID, c.AcceptAudiences, b.h.now)
	return a
}

// clientSecret is the ES256 client secret for client id sub, minted on
// first use and reused until shortly before it expires.
func (a *apple) clientSecret(sub string) (string, error) {
	now := a.h.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.secrets[sub]; ok && now.Before(s.renew) {
		return s.jwt, nil
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: a.key},
		(&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), a.keyID))
	if err != nil {
		return "", &Error{Code: CodeProviderError, Cause: errors.New("client secret: signer")}
	}
	exp := now.Add(appleSecretLife)
	claims, _ := json.Marshal(map[string]any{
		"iss": a.teamID, "iat": now.Unix(), "exp": exp.Unix(), "aud": appleIssuer, "sub": sub,
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", &Error{Code: CodeProviderError, Cause: errors.New("client secret: signing failed")}
	}
	jwt, err := jws.CompactSerialize()
	if err != nil {
		return "", &Error{Code: CodeProviderError, Cause: errors.New("client secret: serializing failed")}
	}
	if len(a.secrets) > 64 { // a handful of bundle IDs; never grows unbounded
		clear(a.secrets)
	}
	a.secrets[sub] = appleSecret{jwt: jwt, renew: exp.Add(-appleSecretRenew)}
	return jwt, nil
}

// FormPost: Apple requires response_mode=form_post whenever scopes are asked.
func (a *apple) FormPost() bool { return len(a.scopes) > 0 }

// AuthCodeURL asks for the configured scopes with response_mode=form_post
// (and none without scopes: Apple then redirects with a query). Apple has
// no prompt or login_hint parameter.
func (a *apple) AuthCodeURL(_ context.Context, o AuthOptions) (string, error) {
	extra := url.Values{}
	if a.FormPost() {
		extra.Set("response_mode", "form_post")
	}
	return a.authCodeURL(a.authURL, strings.Join(a.scopes, " "), o, extra), nil
}

// appleUser is the `user` form field of the first authorization.
type appleUser struct {
	Name *struct {
		FirstName string `json:"firstName"`
		LastName  string `json:"lastName"`
	} `json:"name"`
	Email string `json:"email"`
}

// ReadFormPost keeps the name of the first authorization's `user` (JSON
// {"name":{"firstName","lastName"},"email"}); a `user` that is not that
// JSON is refused. The id_token Apple also posts is ignored: the one of
// the token response is used.
func (a *apple) ReadFormPost(form url.Values) (map[string]string, error) {
	vs := form["user"]
	switch {
	case len(vs) == 0:
		return nil, nil
	case len(vs) > 1:
		return nil, errors.New("user given more than once")
	case len(vs[0]) > appleMaxUser:
		return nil, errors.New("user over 4 KiB")
	}
	var u appleUser
	dec := json.NewDecoder(strings.NewReader(vs[0]))
	if err := dec.Decode(&u); err != nil || dec.More() {
		return nil, errors.New("user is not Apple's JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("user is not Apple's JSON object")
	}
	if u.Name == nil {
		return nil, nil
	}
	name := strings.TrimSpace(strings.TrimSpace(u.Name.FirstName) + " " + strings.TrimSpace(u.Name.LastName))
	if name == "" {
		return nil, nil
	}
	return map[string]string{"name": name}, nil
}

// Exchange redeems the code with a minted client secret and verifies the
// id_token of the token response (nonce included). The name comes from
// the posted `user` (first authorization only).
func (a *apple) Exchange(ctx context.Context, ex Exchange) (Identity, error) {
	if ex.Nonce == "" {
		return Identity{}, badIDToken("no nonce to check")
	}
	secret, err := a.clientSecret(a.clientID)
	if err != nil {
		return Identity{}, err
	}
	cfg := a.oauth2Config(a.authURL, a.tokenURL)
	cfg.ClientSecret = secret
	tok, err := a.exchangeCode(ctx, cfg, ex, tokenErrorOpts{})
	if err != nil {
		return Identity{}, err
	}
	raw, err := rawIDToken(tok)
	if err != nil {
		return Identity{}, err
	}
	id, _, err := a.verify(ctx, raw, ex.Nonce)
	if err != nil {
		return Identity{}, err
	}
	id.Grant = Grant{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
	id.Name = ex.Posted["name"]
	return id, nil
}

// appleExtra are the id_token claims beyond idClaims.
type appleExtra struct {
	Aud            audience `json:"aud"`
	IsPrivateEmail flexBool `json:"is_private_email"`
}

// audience is a JWT aud: a string or a list of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud is neither a string nor a list of strings")
	}
	*a = l
	return nil
}

// verify checks an Apple id_token and returns its identity and the
// audience it was issued to (ours: client_id or a bundle ID).
func (a *apple) verify(ctx context.Context, raw, nonce string) (Identity, string, error) {
	t, err := a.ids.verify(ctx, raw, nonce)
	if err != nil {
		return Identity{}, "", err
	}
	// The signature is verified: the payload can be read as it is.
	var x appleExtra
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &x) != nil {
		return Identity{}, "", badIDToken("malformed claims")
	}
	aud := ""
	for _, v := range x.Aud {
		if slices.Contains(a.audiences, v) {
			aud = v
			break
		}
	}
	id := a.identity(t.Subject, nil)
	if t.Email != "" {
		id.Email, id.EmailVerified = t.Email, bool(t.EmailVerified)
	}
	return id, aud, nil
}

// VerifyIDToken checks an id_token a native app got from Sign in with
// Apple (aud a bundle ID in accept_audiences). The grant's ClientID is
// that audience, for RedeemNativeCode.
func (a *apple) VerifyIDToken(ctx context.Context, rawIDToken, nonce string) (Identity, error) {
	id, aud, err := a.verify(ctx, rawIDToken, nonce)
	if err != nil {
		return Identity{}, err
	}
	id.Grant.ClientID = aud
	return id, nil
}

// RedeemNativeCode redeems the one-time code of an iOS credential with
// client_id = the bundle ID the id_token was issued to (and a client
// secret whose sub is that bundle ID). The token response's id_token must
// name the same subject.
func (a *apple) RedeemNativeCode(ctx context.Context, id Identity, code string) (Grant, error) {
	clientID := or(id.Grant.ClientID, a.clientID)
	if !slices.Contains(a.audiences, clientID) {
		return Grant{}, badIDToken("audience not accepted")
	}
	secret, err := a.clientSecret(clientID)
	if err != nil {
		return Grant{}, err
	}
	cfg := &oauth2.Config{
		ClientID: clientID, ClientSecret: secret,
		Endpoint: oauth2.Endpoint{AuthURL: a.authURL, TokenURL: a.tokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
	tok, err := a.h.exchange(ctx, cfg, code, tokenErrorOpts{})
	if err != nil {
		return Grant{}, err
	}
	raw, err := rawIDToken(tok)
	if err != nil {
		return Grant{}, err
	}
	got, _, err := a.verify(ctx, raw, "")
	if err != nil {
		return Grant{}, err
	}
	if got.Subject != id.Subject {
		return Grant{}, badIDToken("the code's id_token names another subject")
	}
	return Grant{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ClientID: clientID}, nil
}

// Revoke ends the grant at Apple: POST revoke_url with client_id (the
// client the grant was issued to), a client secret for it, the refresh
// token (else the access token) and its token_type_hint.
func (a *apple) Revoke(ctx context.Context, _ string, g Grant) error {
	token, hint := g.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = g.AccessToken, "access_token"
	}
	if token == "" {
		return &Error{Code: CodeInvalidGrant, Cause: errors.New("revoke: no token to revoke")}
	}
	clientID := or(g.ClientID, a.clientID)
	secret, err := a.clientSecret(clientID)
	if err != nil {
		return err
	}
	form := url.Values{"client_id": {clientID}, "client_secret": {secret}, "token": {token}, "token_type_hint": {hint}}
	return a.revokeForm(ctx, a.revokeURL, form, "")
}

// Hook is where Apple's server-to-server notifications for this provider
// arrive: POST /auth/webhooks/apple/{name}.
func (a *apple) Hook() string { return "apple/" + a.info.Name }

// Authenticates: the notification is a JWS, checked by ReadNotification.
func (a *apple) Authenticates(*http.Request) bool { return true }

// appleEvent is the `events` claim of a notification.
type appleEvent struct {
	Type           string   `json:"type"`
	Sub            string   `json:"sub"`
	EventTime      *scalar  `json:"event_time"`
	Email          string   `json:"email"`
	IsPrivateEmail flexBool `json:"is_private_email"`
}

// ReadNotification reads {"payload":"<JWS>"}: the JWS must verify against
// Apple's JWKS, with iss the issuer, aud ours (client_id or a bundle ID),
// iat not in the future, exp (when sent) not passed and a notification no
// older than three days. Its events claim (a JSON string, or an object)
// says what happened: consent-revoked and account-delete(d) unlink,
// email-disabled and email-enabled change the profile, any other type
// changes nothing.
func (a *apple) ReadNotification(r *http.Request) (Notification, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil || len(body) > 64<<10 {
		return Notification{}, errors.New("The body could not be read.")
	}
	var env struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(body, &env) != nil || env.Payload == "" {
		return Notification{}, errors.New(`The body must be JSON {"payload":"<JWS>"}.`)
	}
	payload, err := a.keys.VerifySignature(r.Context(), env.Payload)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) && (pe.Code == CodeProviderError || pe.Code == CodeProviderTimeout) {
			return Notification{}, pe
		}
		return Notification{}, errors.New("The payload's signature does not verify against Apple's keys.")
	}
	var c struct {
		Iss    string          `json:"iss"`
		Aud    audience        `json:"aud"`
		Iat    *int64          `json:"iat"`
		Exp    *int64          `json:"exp"`
		Events json.RawMessage `json:"events"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return Notification{}, errors.New("The payload's claims are malformed.")
	}
	now := a.h.now()
	switch {
	case c.Iss != a.issuer:
		return Notification{}, errors.New("The payload's iss is not Apple's.")
	case !slices.ContainsFunc(c.Aud, func(v string) bool { return slices.Contains(a.audiences, v) }):
		return Notification{}, errors.New("The payload's aud is not this app.")
	case c.Iat == nil || time.Unix(*c.Iat, 0).After(now.Add(iatSkew)):
		return Notification{}, errors.New("The payload has no iat, or one in the future.")
	case c.Exp != nil && !now.Before(time.Unix(*c.Exp, 0)):
		return Notification{}, errors.New("The payload has expired.")
	case c.Exp == nil && now.Sub(time.Unix(*c.Iat, 0)) > appleNotificationMaxAge:
		return Notification{}, errors.New("The payload is too old.")
	}
	ev, err := parseAppleEvents(c.Events)
	if err != nil {
		return Notification{}, err
	}
	n := Notification{Subject: ev.Sub, Detail: ev.Type, At: ev.at()}
	switch ev.Type {
	case "consent-revoked", "account-delete", "account-deleted":
		n.Event = NotificationUnlinked
	case "email-disabled", "email-enabled":
		n.Event = NotificationProfile
		n.Profile = map[string]string{"email_forwarding": strings.TrimPrefix(ev.Type, "email-")}
		if ev.Email != "" {
			n.Profile["email"] = ev.Email
		}
		n.Profile["is_private_email"] = fmt.Sprint(bool(ev.IsPrivateEmail))
	}
	return n, nil
}

// parseAppleEvents reads the events claim: a JSON string holding the
// object (as Apple sends it), or the object itself.
func parseAppleEvents(raw json.RawMessage) (appleEvent, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	var ev appleEvent
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &ev) != nil {
		return appleEvent{}, errors.New("The payload's events claim is not an event object.")
	}
	if ev.Type == "" || ev.Sub == "" || len(ev.Sub) > maxSubjectBytes || !strictText(ev.Sub) {
		return appleEvent{}, errors.New("The event has no type or no valid sub.")
	}
	if len(ev.Email) > maxProfileBytes || !CleanText(ev.Email) {
		ev.Email = ""
	}
	return ev, nil
}

// at is the event time: Apple sends Unix milliseconds (seconds are taken
// too); zero when absent or not a number.
func (ev appleEvent) at() time.Time {
	if ev.EventTime == nil {
		return time.Time{}
	}
	var n int64
	if _, err := fmt.Sscan(string(*ev.EventTime), &n); err != nil || n <= 0 {
		return time.Time{}
	}
	if n > 1e12 {
		return time.UnixMilli(n)
	}
	return time.Unix(n, 0)
}
