package providers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/providers/providertest"
)

func appleSetup() providertest.Setup {
	return providertest.Setup{Kind: fakeidp.Apple, ExtraAudiences: []string{"com.example.app"}}
}

func pkcs8PEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// A bad private_key stops the broker at start, naming the key.
func TestAppleConfigChecks(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	base := func() map[string]any {
		return map[string]any{"name": "apple", "type": "apple", "client_id": "com.example.web",
			"team_id": "TEAM123456", "key_id": "KEY1234567", "private_key": pkcs8PEM(t, p256)}
	}
	ok := base()
	escaped := base()
	escaped["private_key"] = strings.ReplaceAll(pkcs8PEM(t, p256), "\n", `\n`)
	for name, m := range map[string]map[string]any{"valid": ok, "escaped newlines": escaped} {
		if err := providers.Validate([]providers.Config{providers.ConfigOf(m)}, "https://broker.test"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	cases := []struct {
		name, key string
		set       map[string]any
		drop      string
	}{
		{"RSA key", "private_key", map[string]any{"private_key": pkcs8PEM(t, rsaKey)}, ""},
		{"P-384 key", "private_key", map[string]any{"private_key": pkcs8PEM(t, p384)}, ""},
		{"not PEM", "private_key", map[string]any{"private_key": "MIGHAgEAMBMGByqGSM49"}, ""},
		{"garbage in PEM", "private_key", map[string]any{"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, ""},
		{"no team_id", "team_id", nil, "team_id"},
		{"no key_id", "key_id", nil, "key_id"},
		{"no private_key", "private_key", nil, "private_key"},
		{"client_secret", "client_secret", map[string]any{"client_secret": "static"}, ""},
		{"unknown scope", "scopes[1]", map[string]any{"scopes": []string{"name", "openid"}}, ""},
	}
	for _, c := range cases {
		m := base()
		for k, v := range c.set {
			m[k] = v
		}
		delete(m, c.drop)
		err := providers.Validate([]providers.Config{providers.ConfigOf(m)}, "https://broker.test")
		var ce *providers.ConfigError
		if !errors.As(err, &ce) || ce.Key != "providers[0]."+c.key {
			t.Errorf("%s: got %v, want an error naming providers[0].%s", c.name, err, c.key)
			continue
		}
		if strings.Contains(err.Error(), "MIGHAgEAMBMG") || strings.Contains(err.Error(), "AAAA") {
			t.Errorf("%s: the message quotes the key: %v", c.name, err)
		}
	}
}

func TestAppleAuthCodeURL(t *testing.T) {
	e := providertest.Start(t, appleSetup())
	raw, err := e.Provider.AuthCodeURL(context.Background(), providers.AuthOptions{State: "s", Nonce: "n", Prompt: providers.PromptLogin, LoginHint: "x@y"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	for k, want := range map[string]string{"response_type": "code", "response_mode": "form_post", "scope": "name email", "state": "s", "nonce": "n", "prompt": "", "login_hint": "", "code_challenge": ""} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// Without scopes: no form_post (Apple then redirects with a query).
	e = providertest.Start(t, providertest.Setup{Kind: fakeidp.Apple, Scopes: []string{}})
	raw, _ = e.Provider.AuthCodeURL(context.Background(), providers.AuthOptions{State: "s", Nonce: "n"})
	if strings.Contains(raw, "response_mode") || strings.Contains(raw, "scope=") {
		t.Errorf("no scopes: %s", raw)
	}
	if fp := e.Provider.(providers.FormPostReader); fp.FormPost() {
		t.Error("FormPost() without scopes")
	}
	id, _, err := e.Login(t)
	if err != nil || id.Email != "" {
		t.Errorf("login without scopes: %+v %v", id, err)
	}
}

// clientSecrets returns the client secrets the emulator received at path.
func clientSecrets(e *providertest.Env, path string) (ids, secrets []string) {
	for _, c := range e.Emu.Calls() {
		if c.Path == path {
			ids = append(ids, c.Form.Get("client_id"))
			secrets = append(secrets, c.Form.Get("client_secret"))
		}
	}
	return ids, secrets
}

func jwtClaims(t *testing.T, tok string) (hdr, claims map[string]any) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("%q is not a JWT", tok)
	}
	for i, m := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(p[i])
		if err != nil || json.Unmarshal(b, m) != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
	}
	return hdr, claims
}

// The client secret is an ES256 JWT as Apple wants it, cached until shortly
// before its hour is over.
func TestAppleClientSecret(t *testing.T) {
	e := providertest.Start(t, appleSetup())
	if _, _, err := e.Login(t); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Login(t); err != nil {
		t.Fatal(err)
	}
	teamID, keyID, _ := e.Emu.AppleKey()
	_, secrets := clientSecrets(e, "/auth/token")
	if len(secrets) != 2 || secrets[0] != secrets[1] {
		t.Fatalf("secrets: %d, equal %v; want one cached secret used twice", len(secrets), len(secrets) == 2 && secrets[0] == secrets[1])
	}
	hdr, c := jwtClaims(t, secrets[0])
	if hdr["alg"] != "ES256" || hdr["kid"] != keyID {
		t.Errorf("header %v", hdr)
	}
	iat, exp := c["iat"].(float64), c["exp"].(float64)
	if c["iss"] != teamID || c["aud"] != "https://appleid.apple.com" || c["sub"] != e.Setting("client_id") || exp-iat > 3600 || exp <= iat {
		t.Errorf("claims %v", c)
	}
	// Near its end a new one is minted.
	e.Clock.Advance(55 * time.Minute)
	if _, _, err := e.Login(t); err != nil {
		t.Fatal(err)
	}
	_, secrets = clientSecrets(e, "/auth/token")
	if secrets[2] == secrets[0] {
		t.Error("a secret 5 minutes from its exp was reused")
	}
}

// A secret the emulator rejects (another key id) is the deployment's
// problem: provider_error, and nothing secret in the error.
func TestAppleRejectedClientSecret(t *testing.T) {
	s := appleSetup()
	s.Configure = func(m map[string]any) { m["key_id"] = "WRONGKEY00" }
	e := providertest.Start(t, s)
	_, l, err := e.Login(t)
	if providers.ErrorCode(err) != providers.CodeProviderError {
		t.Fatalf("got %v, want provider_error", err)
	}
	if _, secrets := clientSecrets(e, "/auth/token"); strings.Contains(err.Error(), secrets[0]) || strings.Contains(err.Error(), l.Code) {
		t.Errorf("error leaks the secret or the code: %v", err)
	}
}

func TestAppleReadFormPost(t *testing.T) {
	e := providertest.Start(t, appleSetup())
	fp := e.Provider.(providers.FormPostReader)
	for _, c := range []struct {
		user string
		want string
		bad  bool
	}{
		{`{"name":{"firstName":"Alex","lastName":"Appleseed"},"email":"a@privaterelay.appleid.com"}`, "Alex Appleseed", false},
		{`{"name":{"firstName":"민지"},"email":"m@example.com"}`, "민지", false},
		{`{"email":"m@example.com"}`, "", false},
		{`not json`, "", true},
		{`{"name":{"firstName":"A"}} trailing`, "", true},
		{`["a"]`, "", true},
		{`{"name":"Alex"}`, "", true},
	} {
		got, err := fp.ReadFormPost(url.Values{"user": {c.user}, "code": {"x"}})
		if (err != nil) != c.bad || got["name"] != c.want {
			t.Errorf("user %s: got %v, %v", c.user, got, err)
		}
		if err != nil && strings.Contains(err.Error(), c.user) {
			t.Errorf("error quotes the value: %v", err)
		}
	}
	if got, err := fp.ReadFormPost(url.Values{"code": {"x"}}); err != nil || got != nil {
		t.Errorf("no user: %v %v", got, err)
	}
	if _, err := fp.ReadFormPost(url.Values{"user": {"{}", "{}"}}); err == nil {
		t.Error("user twice accepted")
	}
	// The exchange takes the name from what was posted.
	l := e.Authorize(t)
	ex := l.Exchange()
	ex.Posted = map[string]string{"name": "Alex Appleseed"}
	id, err := e.Provider.Exchange(context.Background(), ex)
	if err != nil || id.Name != "Alex Appleseed" || !id.EmailVerified || id.Grant.RefreshToken == "" {
		t.Errorf("exchange: %+v %v", id, err)
	}
}

// email_verified and is_private_email: booleans or "true"/"false"; any
// other spelling refuses the token.
func TestAppleBooleanClaims(t *testing.T) {
	e := providertest.Start(t, appleSetup())
	v := e.Provider.(providers.IDTokenVerifier)
	for _, c := range []struct {
		verified, private any
		ok, want          bool
	}{
		{true, false, true, true},
		{"true", "true", true, true},
		{"false", "false", true, false},
		{false, true, true, false},
		{"yes", "false", false, false},
		{"true", "1", false, false},
		{1, "true", false, false},
	} {
		raw, _ := e.Emu.MintAppleNative("com.example.app", map[string]any{"email_verified": c.verified, "is_private_email": c.private})
		id, err := v.VerifyIDToken(context.Background(), raw, "")
		if c.ok != (err == nil) || (err == nil && id.EmailVerified != c.want) {
			t.Errorf("email_verified %#v, is_private_email %#v: got %+v, %v", c.verified, c.private, id, err)
		}
		if err != nil && providers.ErrorCode(err) != providers.CodeInvalidIDToken {
			t.Errorf("%#v: code %s", c.verified, providers.ErrorCode(err))
		}
	}
}

// Native: the id_token of a bundle ID, its code redeemed with that bundle
// ID, and the grant revoked with it.
func TestAppleNativeCode(t *testing.T) {
	e := providertest.Start(t, appleSetup())
	raw, code := e.Emu.MintAppleNative("com.example.app", nil)
	id, err := e.Provider.(providers.IDTokenVerifier).VerifyIDToken(context.Background(), raw, "")
	if err != nil || id.Grant.ClientID != "com.example.app" {
		t.Fatalf("VerifyIDToken: %+v %v", id, err)
	}
	rd := e.Provider.(providers.NativeCodeRedeemer)
	g, err := rd.RedeemNativeCode(context.Background(), id, code)
	if err != nil || g.RefreshToken == "" || g.ClientID != "com.example.app" {
		t.Fatalf("RedeemNativeCode: %+v %v", g, err)
	}
	ids, secrets := clientSecrets(e, "/auth/token")
	if _, c := jwtClaims(t, secrets[0]); ids[0] != "com.example.app" || c["sub"] != "com.example.app" {
		t.Errorf("native code redeemed as %s with sub %v", ids[0], c["sub"])
	}
	if _, err := rd.RedeemNativeCode(context.Background(), id, code); providers.ErrorCode(err) != providers.CodeInvalidGrant {
		t.Errorf("code redeemed twice: %v", err)
	}
	// A code of another user is refused.
	e.Emu.SetUser(fakeidp.User{Subject: "000999.other.0001", Email: "o@example.com"})
	_, other := e.Emu.MintAppleNative("com.example.app", nil)
	if _, err := rd.RedeemNativeCode(context.Background(), id, other); providers.ErrorCode(err) != providers.CodeInvalidIDToken {
		t.Errorf("another user's code: %v", err)
	}
	if err := e.Provider.(providers.Revoker).Revoke(context.Background(), id.Subject, g); err != nil {
		t.Fatal(err)
	}
	ids, secrets = clientSecrets(e, "/auth/revoke")
	if _, c := jwtClaims(t, secrets[0]); len(ids) != 1 || ids[0] != "com.example.app" || c["sub"] != "com.example.app" {
		t.Errorf("revoked as %v", ids)
	}
	for _, c := range e.Emu.Calls() {
		if c.Path == "/auth/revoke" && (c.Form.Get("token") != g.RefreshToken || c.Form.Get("token_type_hint") != "refresh_token") {
			t.Errorf("revoke form: %v", c.Form)
		}
	}
}
