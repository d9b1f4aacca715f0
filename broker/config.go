package broker

import (
	"net/netip"
	"time"

	"github.com/socialbroker/broker/internal/nativeapps"
	"github.com/socialbroker/broker/internal/returnto"
)

// Config is what the HTTP surface needs from the configuration, validated
// already (internal/app maps the config file onto it).
type Config struct {
	Issuer    string           // the broker's public base URL, without a trailing slash
	Redirects *returnto.Policy // which return_to values are allowed
	Cookies   CookieConfig
	Tokens    TokenConfig
	Keys      KeyConfig
	CORS      CORSConfig
	Limits    LimitConfig
	Signup    SignupConfig
	Admin     AdminConfig
	Events    EventsConfig
	Audit     AuditConfig
	Demo      bool // serve the demo frontend at /demo/
	// NativeApps are the apps that sign in through the system browser
	// (RFC 8252, native.go); nil: none.
	NativeApps *nativeapps.Registry
}

// AdminConfig: Listen is the operators' listener (admin API and /metrics);
// "" serves /metrics on the public listener and no admin API.
type AdminConfig struct {
	Listen string
}

// EventsConfig are the event receivers and the delays between attempts
// (after the last, a delivery is given up).
type EventsConfig struct {
	Endpoints []EventEndpoint
	Retry     []time.Duration
}

// EventEndpoint is one receiver: its URL, the decoded part of its whsec_
// secret, and the event types it takes (nil: all).
type EventEndpoint struct {
	URL    string
	Secret []byte
	Types  []string
}

// AuditConfig: Retention is how long audit rows are kept.
type AuditConfig struct {
	Retention time.Duration
}

// CookieConfig are the securecookie keys of the flow and signup cookies.
type CookieConfig struct {
	HashKey, BlockKey []byte
	Secure            bool
}

// TokenConfig are the lifetimes of access tokens and sessions.
type TokenConfig struct {
	AccessTTL      time.Duration
	RefreshTTL     time.Duration // absolute session lifetime
	RefreshIdleTTL time.Duration
	ReuseGrace     time.Duration
	Audience       []string
	ProfileClaims  []string // profile fields copied into access tokens (privacy trade-off; default none)
}

// KeyConfig: EncryptionKey seals provider grants and derives refresh
// successors; JWKSMaxAge is the JWKS Cache-Control max-age.
type KeyConfig struct {
	EncryptionKey []byte
	JWKSMaxAge    time.Duration
}

// CORSConfig lists the origins allowed to call the API with credentials.
type CORSConfig struct {
	AllowedOrigins []string
}

// LimitConfig are the per-minute limits per client address (0: off).
type LimitConfig struct {
	Login, Callback, Token int
	TrustedProxies         []netip.Prefix
}

// SignupConfig: Mode is form or auto; Fields are the form's fields; Terms
// the terms a new user agrees to (terms.go).
type SignupConfig struct {
	Mode   string
	Fields []string
	Terms  []Term
}
