package providers

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// iatSkew is how far in the future an id_token's iat may lie.
const iatSkew = time.Minute

// idClaims are the id_token claims we read beyond go-oidc's IDToken fields.
type idClaims struct {
	AZP           string   `json:"azp"`
	Email         string   `json:"email"`
	EmailVerified flexBool `json:"email_verified"`
	Name          string   `json:"name"`
	Nickname      string   `json:"nickname"`
	Picture       string   `json:"picture"`
}

// verifiedToken is an id_token that passed every check.
type verifiedToken struct {
	Subject string
	idClaims
}

// idVerifier checks id_tokens: signature (through keySet), iss, exp (go-oidc),
// then aud, azp, iat, nonce and sub here.
type idVerifier struct {
	v         *oidc.IDTokenVerifier
	clientID  string
	audiences []string // client_id, then accept_audiences
	now       func() time.Time
}

func newIDVerifier(issuer string, keys *keySet, clientID string, accept []string, now func() time.Time) *idVerifier {
	return &idVerifier{
		v: oidc.NewVerifier(issuer, keys, &oidc.Config{
			SkipClientIDCheck:    true, // several audiences: checked below
			SupportedSigningAlgs: sigAlgNames,
			Now:                  now,
		}),
		clientID:  clientID,
		audiences: append([]string{clientID}, accept...),
		now:       now,
	}
}

// verify checks raw. nonce, when not empty, must equal the token's nonce.
// Failures are *Error: CodeInvalidIDToken, or a provider code when the JWKS
// could not be fetched.
func (iv *idVerifier) verify(ctx context.Context, raw, nonce string) (*verifiedToken, error) {
	ff := &fetchFailure{}
	tok, err := iv.v.Verify(context.WithValue(ctx, fetchFailureKey{}, ff), raw)
	if err != nil {
		if ff.err != nil {
			return nil, ff.err
		}
		var te *oidc.TokenExpiredError
		if errors.As(err, &te) {
			return nil, badIDToken("expired")
		}
		return nil, &Error{Code: CodeInvalidIDToken, Cause: fmt.Errorf("id_token: %w", err)}
	}
	var c idClaims
	if err := tok.Claims(&c); err != nil {
		return nil, badIDToken("malformed claims")
	}
	if !iv.audienceOK(tok.Audience, c.AZP) {
		return nil, badIDToken("audience not accepted")
	}
	if tok.IssuedAt.IsZero() {
		return nil, badIDToken("no iat")
	}
	if tok.IssuedAt.After(iv.now().Add(iatSkew)) {
		return nil, badIDToken("issued in the future")
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(nonce)) != 1 {
		return nil, badIDToken("nonce mismatch")
	}
	if tok.Subject == "" {
		return nil, badIDToken("no sub")
	}
	return &verifiedToken{Subject: tok.Subject, idClaims: c}, nil
}

// audienceOK: at least one aud is ours (client_id or accept_audiences). With
// several audiences the token must name its authorized party: azp, when
// present, must be one of ours; without azp every audience must be ours.
func (iv *idVerifier) audienceOK(aud []string, azp string) bool {
	ours := false
	all := true
	for _, a := range aud {
		if slices.Contains(iv.audiences, a) {
			ours = true
		} else {
			all = false
		}
	}
	if !ours {
		return false
	}
	if len(aud) > 1 {
		if azp != "" {
			return slices.Contains(iv.audiences, azp)
		}
		return all
	}
	return true
}

func badIDToken(why string) *Error {
	return &Error{Code: CodeInvalidIDToken, Cause: errors.New("id_token: " + why)}
}
