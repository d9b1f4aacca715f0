// Package providers turns configured identity providers (Kakao, Naver, Google,
// any OpenID Connect issuer, any OAuth2 server with a JSON userinfo endpoint)
// into one small interface the broker drives during the server-side
// authorization-code flow.
package providers

import (
	"context"
	"errors"
	"fmt"
)

// Identity is what a provider says about the person who just logged in.
// Subject is kept exactly as the provider sent it (a numeric Kakao id stays
// its decimal string). Only Subject is guaranteed; everything else may be empty.
type Identity struct {
	Provider      string // the configured provider name, e.g. "kakao"
	Subject       string
	Email         string
	EmailVerified bool
	Name          string // display name or nickname
	Picture       string

	// Grant holds the provider's tokens, kept (encrypted) only so that the
	// grant can be revoked later. Never logged.
	Grant Grant
}

// Grant is the provider-side token pair of a login.
type Grant struct {
	AccessToken  string
	RefreshToken string
}

// Exchange carries what the callback knows when it trades a code.
type Exchange struct {
	Code         string
	CodeVerifier string // PKCE verifier; empty when the provider does not use PKCE
	Nonce        string // expected id_token nonce; empty when none was sent
	State        string // the login's state (Naver wants it on the token request)
}

// Provider is one configured identity provider.
type Provider interface {
	// Name is the configured name used in URLs (/auth/login/{name}).
	Name() string
	// Type is the preset: kakao, naver, google, oidc or oauth2.
	Type() string
	// DisplayName is the human label for the login button.
	DisplayName() string
	// UsesPKCE reports whether AuthCodeURL should carry a code_challenge.
	UsesPKCE() bool
	// UsesNonce reports whether the provider issues id_tokens bound to a nonce.
	UsesNonce() bool
	// AuthCodeURL is the provider's authorize URL for one login. The redirect
	// URI is always issuer + /auth/callback/{name}. codeChallenge is the S256
	// challenge, or empty; nonce is empty when UsesNonce is false.
	AuthCodeURL(state, nonce, codeChallenge string) string
	// Exchange trades an authorization code for the identity, verifying any
	// id_token (signature, iss, aud, exp, nonce). Errors are *Error.
	Exchange(ctx context.Context, ex Exchange) (Identity, error)
}

// IDTokenVerifier is implemented by providers that issue id_tokens; it backs
// the native-app token exchange. nonce may be empty (then it is not checked).
type IDTokenVerifier interface {
	VerifyIDToken(ctx context.Context, rawIDToken, nonce string) (Identity, error)
}

// Revoker is implemented by providers whose grant can be revoked server-side.
type Revoker interface {
	Revoke(ctx context.Context, subject string, g Grant) error
}

// Stable error codes. They are shown to users (through a plain-language page)
// and to API clients; the cause stays in the logs.
const (
	CodeAccessDenied    = "access_denied"    // the user declined at the provider
	CodeInvalidGrant    = "invalid_grant"    // code reused, expired or unknown
	CodeInvalidIDToken  = "invalid_id_token" // signature, iss, aud, exp, nonce, sub
	CodeInvalidResponse = "invalid_response" // unparseable or failed envelope
	CodeProviderError   = "provider_error"   // 5xx, reset, oversized body
	CodeProviderTimeout = "provider_timeout" // no answer in time
)

// Error is a provider failure with a stable public Code and an internal Cause.
// Cause never contains tokens, codes or raw provider bodies.
type Error struct {
	Code   string
	Cause  error
	Status int    // the provider's HTTP status when it answered with an error status, else 0
	Wire   string // with Status 4xx: the provider's own error code ("invalid_client", Kakao's "-401"), when it sent one that looks like a code
}

func (e *Error) Error() string {
	if e.Cause == nil {
		return e.Code
	}
	return fmt.Sprintf("%s: %v", e.Code, e.Cause)
}

func (e *Error) Unwrap() error { return e.Cause }

// ErrorCode returns the stable code of err, or CodeProviderError.
func ErrorCode(err error) string {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return CodeProviderError
}
