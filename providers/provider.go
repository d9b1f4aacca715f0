// Package providers turns configured identity providers (Kakao, Naver, Google,
// Apple, any OpenID Connect issuer, any OAuth2 server with a JSON userinfo endpoint)
// into one small interface the broker drives during the server-side
// authorization-code flow.
//
// Each preset is one file that registers its type (see register): its
// typed config decoded strictly from the config entry, its checks and
// defaults, the Provider it builds and the optional capabilities that
// Provider implements (IDTokenVerifier, Revoker, NotificationReceiver). The
// registry looks types up in that map; nothing else names a preset. Its
// emulator is one dialect file in internal/fakeidp.
package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
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
	// ClientID is the client the grant was issued to when it is not the
	// provider's client_id (Apple: a bundle ID, for codes of a native app);
	// revoking it needs that client's credentials.
	ClientID string `json:",omitempty"`
}

// Exchange carries what the callback knows when it trades a code.
type Exchange struct {
	Code         string
	CodeVerifier string // PKCE verifier; empty when the provider does not use PKCE
	Nonce        string // expected id_token nonce; empty when none was sent
	State        string // the login's state (Naver wants it on the token request)
	// Posted is what FormPostReader.ReadFormPost kept from a form_post
	// callback (Apple's first-authorization name); nil otherwise.
	Posted map[string]string
}

// Info is what the broker knows about a provider without asking it: fixed
// when the registry is built.
type Info struct {
	Name        string // the configured name used in URLs (/auth/login/{name})
	Type        string // the preset: kakao, naver, google, oidc, oauth2, …
	DisplayName string // the human label for the login button
	PKCE        bool   // AuthCodeURL should get a code_challenge (S256)
	Nonce       bool   // the provider issues id_tokens bound to a nonce
}

// Prompt asks the provider to show something before it calls back. Each
// preset maps it to its own spelling, or leaves out what it cannot ask.
type Prompt string

// The prompts a login or link may ask for.
const (
	PromptNone          Prompt = ""               // the provider decides
	PromptLogin         Prompt = "login"          // sign in again, even with a session at the provider
	PromptConsent       Prompt = "consent"        // ask for consent again
	PromptSelectAccount Prompt = "select_account" // let the user pick (or add) an account
)

// AuthOptions are the parameters of one authorize request. The zero value
// of Prompt and LoginHint adds nothing to the URL.
type AuthOptions struct {
	State         string
	Nonce         string // sent only when Info().Nonce
	CodeChallenge string // the S256 challenge; sent only when Info().PKCE
	Prompt        Prompt
	LoginHint     string // sent only by presets whose provider takes one
}

// Provider is one configured identity provider.
type Provider interface {
	// Info is the provider's static facts.
	Info() Info
	// AuthCodeURL is the provider's authorize URL for one login; the
	// redirect URI is always issuer + /auth/callback/{name}. It runs
	// discovery first when the provider needs it; that failure is an *Error.
	AuthCodeURL(ctx context.Context, o AuthOptions) (string, error)
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

// NotificationReceiver is implemented by providers that call the broker
// back about their users (Kakao's unlink webhook, Apple's server-to-server
// notifications). The broker serves /auth/webhooks/{Hook}, finds the
// receiver that Authenticates the request, parses the form, then reads the
// notification.
type NotificationReceiver interface {
	// Hook is the path under /auth/webhooks/ the provider calls, e.g.
	// "kakao/unlink" or "apple/{name}".
	Hook() string
	// Authenticates reports whether r carries this provider's credentials
	// (compared in constant time). It reads no body. A provider whose
	// notifications are signed in the body (Apple) answers true for its own
	// hook: ReadNotification then checks the signature.
	Authenticates(r *http.Request) bool
	// ReadNotification reads an authenticated request whose form has been
	// parsed. An error is the provider's mistake; its text is a short
	// description fit for the answer. A *Error with CodeProviderError or
	// CodeProviderTimeout is ours instead (the provider's keys could not be
	// fetched): the provider should try again later.
	ReadNotification(r *http.Request) (Notification, error)
}

// Notification is what a provider told the broker about one of its users.
type Notification struct {
	Subject string // the provider's subject of the user
	Event   string // NotificationUnlinked, NotificationProfile, or "" (nothing to do)
	Detail  string // a note for the log as sent (Kakao's referrer_type, Apple's event type): the caller makes it log-safe
	// Profile holds, for NotificationProfile, the identity's profile
	// values that changed.
	Profile map[string]string
	// At is when the event happened at the provider (zero: not said). A
	// profile change older than the last one applied changes nothing.
	At time.Time
}

// The notifications a provider may send.
const (
	// NotificationUnlinked: the user left the app at the provider; the
	// identity goes and the user's sessions end.
	NotificationUnlinked = "unlinked"
	// NotificationProfile: the provider's profile of the user changed
	// (Apple's email-disabled / email-enabled).
	NotificationProfile = "profile"
)

// FormPostReader is implemented by providers that can call back with a
// cross-site POST (response_mode=form_post: Apple when scopes are asked).
// The broker keeps what ReadFormPost returns sealed until the exchange,
// which gets it as Exchange.Posted.
type FormPostReader interface {
	// FormPost reports whether this provider, as configured, calls back
	// with a POST.
	FormPost() bool
	// ReadFormPost picks from the posted form what the exchange needs
	// beyond code and state (Apple's first-authorization name). A malformed
	// value is an error whose text is fit for the log (never the value).
	ReadFormPost(form url.Values) (map[string]string, error)
}

// NativeCodeRedeemer is implemented by providers whose native SDK hands the
// app a one-time authorization code beside the id_token (Apple). id is the
// identity of the exchanged id_token, as VerifyIDToken returned it; the
// grant the code is redeemed for belongs to the same subject and is kept
// so that it can be revoked later.
type NativeCodeRedeemer interface {
	RedeemNativeCode(ctx context.Context, id Identity, code string) (Grant, error)
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
