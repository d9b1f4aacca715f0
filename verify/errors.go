package verify

import (
	"errors"
	"fmt"
)

// ErrInvalidToken is wrapped by every refusal of Verify, together with
// one of the errors below that says why.
var ErrInvalidToken = errors.New("invalid access token")

// Why a token was refused; test with errors.Is.
var (
	// ErrMalformed: not a canonical compact JWS, or a header or claims
	// member of the wrong JSON type, or a repeated member.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgorithm: the header's alg is not RS256.
	ErrAlgorithm = errors.New("algorithm not allowed")
	// ErrType: the header's typ is not at+jwt.
	ErrType = errors.New("not an access token (typ)")
	// ErrUnknownKey: no published key has the header's kid, even after a
	// refetch of the JWKS (or the refetch was in its cooldown or failed).
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("bad signature")
	// ErrIssuer: iss is not the verifier's issuer.
	ErrIssuer = errors.New("wrong issuer")
	// ErrAudience: aud does not contain the verifier's audience.
	ErrAudience = errors.New("wrong audience")
	// ErrExpired: exp (plus the leeway) has passed.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf or iat is later than now plus the leeway.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrMissingClaim: exp, iat, sub or sid is missing.
	ErrMissingClaim = errors.New("missing claim")
)

// tokenError is a refusal: its kind, ErrInvalidToken, and details.
type tokenError struct {
	kind   error
	detail string
	cause  error // a failed JWKS fetch, for ErrUnknownKey
}

func invalid(kind error, format string, args ...any) error {
	return &tokenError{kind: kind, detail: fmt.Sprintf(format, args...)}
}

func (e *tokenError) Error() string {
	s := "verify: " + e.kind.Error()
	if e.detail != "" {
		s += ": " + e.detail
	}
	if e.cause != nil {
		s += " (" + e.cause.Error() + ")"
	}
	return s
}

func (e *tokenError) Unwrap() []error {
	errs := []error{ErrInvalidToken, e.kind}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}
