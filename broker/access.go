package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/socialbroker/broker/internal/compact"
)

// accessClaims are the claims of an access token (contract §5). No
// personal data: sub is the opaque internal user id.
type accessClaims struct {
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Aud audience `json:"aud"`
	Iat int64    `json:"iat"`
	Nbf int64    `json:"nbf"`
	Exp int64    `json:"exp"`
	Jti string   `json:"jti"`
	Sid string   `json:"sid"`
	Idp string   `json:"idp"`
}

// audience marshals as a string when there is one value, as RFC 7519 allows.
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// issueAccessToken signs an access token for a session; profile (the
// user's, when tokens.profile_claims names fields) adds those fields as
// claims of the same name.
func (s *Server) issueAccessToken(sub, sid, idp string, profile map[string]string) (string, error) {
	now := s.now().Truncate(time.Second)
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	c := accessClaims{
		Iss: s.cfg.Issuer, Sub: sub, Aud: audience(s.cfg.Tokens.Audience),
		Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(s.cfg.Tokens.AccessTTL).Unix(),
		Jti: base64.RawURLEncoding.EncodeToString(jti[:]), Sid: sid, Idp: idp,
	}
	var payload []byte
	var err error
	if len(s.cfg.Tokens.ProfileClaims) == 0 {
		payload, err = json.Marshal(c)
	} else {
		payload, err = withProfileClaims(c, s.cfg.Tokens.ProfileClaims, profile)
	}
	if err != nil {
		return "", err
	}
	tok, err := s.keys.Sign(payload)
	if err != nil {
		return "", err
	}
	s.metrics.tokensIssued.Inc()
	return string(tok), nil
}

// withProfileClaims is the payload of c plus the named profile fields the
// user has.
func withProfileClaims(c accessClaims, names []string, profile map[string]string) ([]byte, error) {
	m := map[string]any{}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, n := range names {
		if v, ok := profile[n]; ok && v != "" {
			m[n] = v
		}
	}
	return json.Marshal(m)
}

var errBadAccessToken = errors.New("invalid access token")

// verifyAccessToken checks one of our own access tokens: RS256 only, a
// published kid, typ at+jwt, our issuer and audience, and its times.
func (s *Server) verifyAccessToken(raw string) (accessClaims, error) {
	var c accessClaims
	parts, err := compact.Decode(raw)
	if err != nil {
		return c, fmt.Errorf("%w: %w", errBadAccessToken, err)
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	dec := json.NewDecoder(bytes.NewReader(parts.Header))
	if err := dec.Decode(&hdr); err != nil {
		return c, fmt.Errorf("%w: header", errBadAccessToken)
	}
	if hdr.Alg != "RS256" || hdr.Typ != "at+jwt" {
		return c, fmt.Errorf("%w: alg %q typ %q", errBadAccessToken, hdr.Alg, hdr.Typ)
	}
	pub, ok := s.keys.PublicKey(hdr.Kid)
	if !ok {
		return c, fmt.Errorf("%w: unknown kid", errBadAccessToken)
	}
	payload, err := jws.Verify([]byte(raw), jws.WithKey(jwa.RS256, pub))
	if err != nil {
		return c, fmt.Errorf("%w: signature", errBadAccessToken)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, fmt.Errorf("%w: claims", errBadAccessToken)
	}
	now := s.now().Unix()
	const leeway = 30
	switch {
	case c.Iss != s.cfg.Issuer:
		return c, fmt.Errorf("%w: issuer", errBadAccessToken)
	case !intersects(c.Aud, s.cfg.Tokens.Audience):
		return c, fmt.Errorf("%w: audience", errBadAccessToken)
	case now >= c.Exp:
		return c, fmt.Errorf("%w: expired", errBadAccessToken)
	case c.Nbf > now+leeway || c.Iat > now+leeway:
		return c, fmt.Errorf("%w: not yet valid", errBadAccessToken)
	case c.Sub == "" || c.Sid == "":
		return c, fmt.Errorf("%w: missing sub or sid", errBadAccessToken)
	}
	return c, nil
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}
