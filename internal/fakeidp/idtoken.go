package fakeidp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// signingKey is an RSA-2048 key whose kid is its RFC 7638 thumbprint.
type signingKey struct {
	priv       *rsa.PrivateKey
	kid        string
	pub        jwk.Key         // the public JWK
	publicJSON json.RawMessage // pub as published in the JWKS
}

func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("emulator: generating an RSA key: %w", err)
	}
	pub, err := jwk.FromRaw(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if err := jwk.AssignKeyID(pub); err != nil { // SHA-256 thumbprint, RFC 7638
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if err := pub.Set(jwk.AlgorithmKey, jwa.RS256); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if err := pub.Set(jwk.KeyUsageKey, "sig"); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	js, err := json.Marshal(pub)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	return &signingKey{priv: priv, kid: pub.KeyID(), pub: pub, publicJSON: js}, nil
}

func mustNewSigningKey() *signingKey {
	k, err := newSigningKey()
	if err != nil {
		panic(err)
	}
	return k
}

// activeKeyLocked returns the signing key, creating it on first use (Naver and
// OAuth2 emulators only need one when MintIDToken is called). e.mu is held.
func (e *Emulator) activeKeyLocked() *signingKey {
	if e.active == nil {
		e.active = mustNewSigningKey()
		e.keys = append(e.keys, e.active)
	}
	return e.active
}

// attackerLocked returns the attacker's key, creating it on first use. e.mu
// is held.
func (e *Emulator) attackerLocked() *signingKey {
	if e.attacker == nil {
		e.attacker = mustNewSigningKey()
	}
	return e.attacker
}

// The URLs of JKUHeader and X5UHeader tokens, relative to URL(). They are in
// neither discovery nor Endpoints.
const (
	attackerJWKSPath = "/attacker/jwks.json"
	attackerCertPath = "/attacker/cert.pem"
)

// selfSignedPEM is a self-signed certificate for k, PEM-encoded, valid from an
// hour before now for a day.
func selfSignedPEM(k *signingKey, now time.Time) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(randBytes(16)),
		Subject:      pkix.Name{CommonName: "attacker.example"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.priv.PublicKey, k.priv)
	if err != nil {
		panic("emulator: self-signing a certificate: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// RotateKey adds a new signing key to the JWKS and signs with it from now on.
// The previous keys stay published. The new key is the one UnknownKid tokens
// were signed with, so those verify after the rotation.
func (e *Emulator) RotateKey() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.activeKeyLocked()
	if e.next == nil {
		e.next = mustNewSigningKey()
	}
	e.keys = append(e.keys, e.next)
	e.active = e.next
	e.next = nil
}

// MintIDToken signs an id_token with the emulator's key, as a native SDK
// would receive it. Missing iss, aud, iat, exp and sub are filled (iss =
// Endpoints().Issuer, or URL() for kinds without one; aud = ClientID, or any of
// ExtraAudiences when the caller sets it; iat = now; exp = now+1h; sub = the
// current user's Subject). The current Faults.IDToken defect is applied.
func (e *Emulator) MintIDToken(claims map[string]any) string {
	c := maps.Clone(claims)
	if c == nil {
		c = map[string]any{}
	}
	now := e.now()
	if _, ok := c["iss"]; !ok {
		c["iss"] = e.base
	}
	if _, ok := c["aud"]; !ok {
		c["aud"] = e.opts.ClientID
	}
	if _, ok := c["iat"]; !ok {
		c["iat"] = now.Unix()
	}
	if _, ok := c["exp"]; !ok {
		c["exp"] = now.Add(time.Hour).Unix()
	}
	if _, ok := c["sub"]; !ok {
		c["sub"] = e.currentUser().Subject
	}
	return e.signIDToken(c, e.currentFaults().IDToken)
}

// idTokenFor builds the id_token of a token response. withNonce is false on
// refresh (providers do not repeat the nonce then).
func (e *Emulator) idTokenFor(g *grant, accessToken string, now time.Time, fault IDTokenFault, withNonce bool) string {
	u := g.user
	c := map[string]any{
		"iss": e.base,
		"aud": g.clientID,
		"sub": u.Subject,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	if withNonce && g.nonce != "" {
		c["nonce"] = g.nonce
	}
	e.d.idTokenClaims(c, g, accessToken, now)
	return e.signIDToken(c, fault)
}

// atHash is the OpenID Connect at_hash of an access token for RS256.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// signIDToken applies fault to the claims and signs them.
func (e *Emulator) signIDToken(c map[string]any, fault IDTokenFault) string {
	now := e.now()
	switch fault {
	case WrongAudience:
		c["aud"] = "someone-else-" + e.opts.ClientID
	case WrongIssuer:
		c["iss"] = "https://issuer.attacker.example"
	case WrongNonce:
		c["nonce"] = "forged-" + randToken(12)
	case MissingNonce:
		delete(c, "nonce")
	case Expired:
		c["iat"] = now.Add(-2 * time.Hour).Unix()
		c["exp"] = now.Add(-time.Hour).Unix()
		if _, ok := c["auth_time"]; ok {
			c["auth_time"] = now.Add(-2 * time.Hour).Unix()
		}
	case FutureIssuedAt:
		c["iat"] = now.Add(time.Hour).Unix()
		c["exp"] = now.Add(2 * time.Hour).Unix()
	case MissingSub:
		delete(c, "sub")
	case SubMismatch:
		c["sub"] = otherSubject(fmt.Sprint(c["sub"]))
	case WrongAZP:
		c["aud"] = withAudience(c["aud"], otherClient)
		c["azp"] = otherClient
	}
	payload, err := json.Marshal(c)
	if err != nil {
		panic("emulator: id_token claims: " + err.Error())
	}

	e.mu.Lock()
	active := e.activeKeyLocked()
	var signer *signingKey
	var extra map[string]any // protected headers beyond kid, typ and alg
	kid := active.kid
	switch fault {
	case AttackerKey:
		signer = e.attackerLocked() // kid stays the real one
	case EmbeddedJWK:
		signer = e.attackerLocked()
		kid, extra = signer.kid, map[string]any{jws.JWKKey: signer.pub}
	case JKUHeader:
		signer = e.attackerLocked()
		kid, extra = signer.kid, map[string]any{jws.JWKSetURLKey: e.base + attackerJWKSPath}
	case X5UHeader:
		signer = e.attackerLocked()
		kid, extra = signer.kid, map[string]any{jws.X509URLKey: e.base + attackerCertPath}
	case UnknownKid:
		if e.next == nil {
			e.next = mustNewSigningKey()
		}
		signer, kid = e.next, e.next.kid
	default:
		signer = active
	}
	e.mu.Unlock()

	switch fault {
	case AlgNone, AlgNoneTitle, AlgNoneUpper, AlgNoneMixed:
		return compact(map[string]any{"alg": noneAlgs[fault], "typ": "JWT"}, payload, nil)
	case HS256WithPublicKey:
		der, err := x509.MarshalPKIXPublicKey(&active.priv.PublicKey)
		if err != nil {
			panic("emulator: " + err.Error())
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		hdr, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": active.kid, "typ": "JWT"})
		input := b64(hdr) + "." + b64(payload)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(input))
		return input + "." + b64(mac.Sum(nil))
	}
	tok := signRS256(signer, kid, payload, extra)
	if fault == BadSignature {
		i := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
		if err != nil {
			panic("emulator: " + err.Error())
		}
		sig[len(sig)/2] ^= 0x5A
		tok = tok[:i+1] + b64(sig)
	}
	return tok
}

// noneAlgs are the alg headers of the unsigned-token faults.
var noneAlgs = map[IDTokenFault]string{AlgNone: "none", AlgNoneTitle: "None", AlgNoneUpper: "NONE", AlgNoneMixed: "nOnE"}

// otherClient is the audience and azp WrongAZP adds.
const otherClient = "other-client"

// withAudience returns the aud claim aud (a string or a list) with extra
// appended, as a list.
func withAudience(aud any, extra string) []any {
	switch a := aud.(type) {
	case []any:
		return append(slices.Clone(a), extra)
	case []string:
		out := make([]any, 0, len(a)+1)
		for _, s := range a {
			out = append(out, s)
		}
		return append(out, extra)
	default:
		return []any{a, extra}
	}
}

// signRS256 signs payload with k under kid, adding the protected headers in
// extra (jws header names to values of the types jws.Headers.Set takes).
func signRS256(k *signingKey, kid string, payload []byte, extra map[string]any) string {
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, kid); err != nil {
		panic("emulator: " + err.Error())
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		panic("emulator: " + err.Error())
	}
	for name, v := range extra {
		if err := hdr.Set(name, v); err != nil {
			panic("emulator: " + err.Error())
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(jwa.RS256, k.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		panic("emulator: signing an id_token: " + err.Error())
	}
	return string(out)
}

func compact(header map[string]any, payload, sig []byte) string {
	hdr, _ := json.Marshal(header)
	return b64(hdr) + "." + b64(payload) + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// otherSubject returns a different subject of the same shape.
func otherSubject(sub string) string {
	if isJSONInteger(sub) {
		n, _ := new(big.Int).SetString(sub, 10)
		return n.Add(n, big.NewInt(1)).String()
	}
	return sub + "-other"
}
