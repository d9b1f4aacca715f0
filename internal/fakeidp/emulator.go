// Package fakeidp runs strict, in-process emulators of the identity providers
// the broker talks to (Kakao, Naver, Google, Apple, a generic OpenID Connect
// provider and a Gitea-like OAuth2 server). Each emulator is a real HTTP server on
// loopback that speaks the provider's wire format, including its quirks and its
// error shapes, and refuses everything the real provider refuses: unknown
// client_id, unregistered redirect_uri, replayed or expired codes, bad PKCE
// verifiers, wrong client secrets.
//
// Layout: the shared machinery (emulator.go, authorize.go, token.go,
// resource.go, idtoken.go, bodyfaults.go) speaks one dialect per provider,
// one file each (kakao.go, naver.go, google.go, apple.go, oidc.go, oauth2.go: paths,
// scopes, consent and error pages, token and userinfo JSON, error shapes,
// and the broker config entry, see ProviderConfig). A new provider is one
// dialect file.
//
// The emulators back the broker's tests, broker-dev and brokerbench; they
// live under internal/ and are never linked into the shipped broker binary.
// The attacker's key documents are served only with
// Options.AttackerEndpoints. Faults (slow,
// failing or resetting endpoints, oversized, trickled or gzip-bomb bodies,
// forged id_tokens) are switched on with SetFaults.
package fakeidp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Kind selects which provider an Emulator plays: each dialect file
// declares its own (Kakao, Naver, Google, OIDC, OAuth2).
type Kind string

// User is the person who consents on the emulator's consent page.
type User struct {
	Subject       string // Kakao: decimal digits, emitted as a JSON *number* in /v2/user/me (written verbatim, never via float64); Naver: string; OAuth2: a JSON number when all digits, else a string
	Email         string // "" = absent (not consented)
	EmailVerified bool
	Nickname      string
	Name          string
	Picture       string
}

// Options configure an Emulator.
type Options struct {
	Kind         Kind
	ClientID     string
	ClientSecret string // "" = no secret required; when set, token requests must carry it (client_secret_post; Naver also accepts it in the query)
	AdminKey     string // Kakao: admin key for /v1/user/unlink with `Authorization: KakaoAK <key>`
	// ServiceTerms are Kakao Sync's terms registered for the app (Kakao
	// only; see kakaosync.go): shown on the consent screen, agreed there,
	// and reported by GET /v2/user/service_terms.
	ServiceTerms   []ServiceTerm
	RedirectURIs   []string // registered redirect URIs, exact string match
	ExtraAudiences []string // extra audiences MintIDToken may be asked for (Kakao native app key)
	User           User     // the user who consents by default
	Addr           string   // listen address; default "127.0.0.1:0"
	// Host, when set, is the host name in the emulator's URLs instead of
	// the listener's address: "localhost" puts it on another site than a
	// broker at 127.0.0.1 (a browser then sends it no SameSite cookies).
	Host string
	// AttackerEndpoints mounts where JKUHeader and X5UHeader tokens point
	// (/attacker/jwks.json, /attacker/cert.pem): for tests that show a
	// verifier never fetches them. Off, nothing serves them.
	AttackerEndpoints bool
	Now               func() time.Time // default time.Now
}

// Endpoints are the absolute URLs of an emulator's endpoints. Issuer and
// JWKSURL are "" for providers without OpenID Connect (Naver, OAuth2);
// RevokeURL is "" for OAuth2 (Gitea has no revocation endpoint).
type Endpoints struct{ AuthURL, TokenURL, UserinfoURL, Issuer, JWKSURL, RevokeURL string }

// Call is one request the emulator received.
type Call struct {
	Method, Path  string
	Form          url.Values // query and form body merged (body values first)
	Authorization string
}

// Faults make an emulator misbehave. The zero value is an honest provider.
//
// The body faults (Reset, Trickle, GzipBomb, HugeBody) spoil the 200 answers
// of the token and userinfo endpoints, on both unless BodyFaultsOnly names
// one. They act where the answer is written: after TokenDelay/UserinfoDelay,
// only when TokenStatus/UserinfoStatus is zero (a status fault answers
// instead), and only for requests the endpoint grants (a refused code or
// token still gets its usual error). The request has been handled by then:
// the code is spent and the tokens are issued, only the answer is lost. At
// most one body fault applies: Reset if set, else Trickle, else GzipBomb,
// else HugeBody.
type Faults struct {
	TokenStatus    int           // non-zero: the token endpoint answers this HTTP status with TokenBody (default: the provider's generic error JSON; for 5xx a plain "Internal Server Error" HTML)
	TokenBody      string        // body for TokenStatus
	TokenDelay     time.Duration // sleep before answering (the request context cancels the sleep)
	UserinfoStatus int           // like TokenStatus, for the userinfo endpoints
	UserinfoBody   string        // body for UserinfoStatus
	UserinfoDelay  time.Duration // like TokenDelay, for the userinfo endpoints
	Reset          bool          // body fault: the connection is closed with a TCP RST (SO_LINGER 0) and no response at all
	Trickle        time.Duration // body fault: 200 and the JSON content type are sent and flushed at once (no Content-Length), then the body one byte at a time, flushed, with a sleep of Trickle between bytes; stops when the client gives up
	GzipBomb       bool          // body fault: 200 with Content-Encoding: gzip, about 90 KiB on the wire that inflate to a valid JSON object > 64 MiB (a padding member, an array of 64 KiB strings, before the real members); sent only when the request's Accept-Encoding allows gzip, otherwise the HugeBody answer (a real server does not gzip unasked)
	HugeBody       bool          // body fault: 200 with a valid JSON body > 2 MiB (a padding string before the real members)
	BodyFaultsOnly string        // "token" or "userinfo": the body faults spoil only that endpoint's answers; "" = both
	IDToken        IDTokenFault  // defect of every id_token issued or minted from now on
	RevokeStatus   int           // non-zero: revoke/unlink answers this status with RevokeBody and revokes nothing
	RevokeBody     string        // body for RevokeStatus (default: the provider's generic error JSON, like TokenBody)
	TermsStatus    int           // Kakao: non-zero: /v2/user/service_terms answers this status with TermsBody (like TokenStatus)
	TermsBody      string        // body for TermsStatus
	TermsDelay     time.Duration // Kakao: sleep before /v2/user/service_terms answers
}

// IDTokenFault is a defect put into id_tokens.
type IDTokenFault string

// The id_token defects. The attacker's key (AttackerKey, EmbeddedJWK,
// JKUHeader, X5UHeader) is one RSA key per emulator that the JWKS never
// publishes.
const (
	IDTokenHonest      IDTokenFault = ""
	BadSignature       IDTokenFault = "bad_signature"    // signature bytes altered
	WrongAudience      IDTokenFault = "wrong_audience"   // aud is another client
	WrongIssuer        IDTokenFault = "wrong_issuer"     // iss is another issuer
	WrongNonce         IDTokenFault = "wrong_nonce"      // nonce is a fresh random value
	MissingNonce       IDTokenFault = "missing_nonce"    // no nonce claim
	Expired            IDTokenFault = "expired"          // iat two hours ago, exp one hour ago
	FutureIssuedAt     IDTokenFault = "future_iat"       // iat an hour ahead
	AlgNone            IDTokenFault = "alg_none"         // {"alg":"none"} and an empty signature
	AlgNoneTitle       IDTokenFault = "alg_none_title"   // like AlgNone, spelt {"alg":"None"}
	AlgNoneUpper       IDTokenFault = "alg_none_upper"   // like AlgNone, spelt {"alg":"NONE"}
	AlgNoneMixed       IDTokenFault = "alg_none_mixed"   // like AlgNone, spelt {"alg":"nOnE"}
	HS256WithPublicKey IDTokenFault = "hs256_public_key" // HMAC-SHA256 keyed with the PEM of the emulator's public key, kid of the real key
	AttackerKey        IDTokenFault = "attacker_key"     // signed by a key not in the JWKS but with the real kid
	EmbeddedJWK        IDTokenFault = "embedded_jwk"     // signed by the attacker's key, whose public JWK is in the header as jwk (RFC 7515 §4.1.3), kid of that key
	JKUHeader          IDTokenFault = "jku_header"       // signed by the attacker's key, header jku = URL()+"/attacker/jwks.json", a JWKS of that key served by the emulator, kid of that key
	X5UHeader          IDTokenFault = "x5u_header"       // signed by the attacker's key, header x5u = URL()+"/attacker/cert.pem", a self-signed certificate (PEM) of that key served by the emulator, kid of that key
	WrongAZP           IDTokenFault = "wrong_azp"        // aud is [the audience, "other-client"] and azp "other-client" (OpenID Connect Core 3.1.3.7); Kakao tokens get the azp too
	UnknownKid         IDTokenFault = "unknown_kid"      // signed by the next key, whose kid is not in the JWKS until RotateKey
	MissingSub         IDTokenFault = "missing_sub"      // no sub claim
	SubMismatch        IDTokenFault = "sub_mismatch"     // sub differs from the userinfo subject
)

// AuthorizeError is returned by Approve and Deny when the provider refuses the
// authorization request itself with an error page instead of a redirect
// (unknown client_id, unregistered redirect_uri, ...).
type AuthorizeError struct {
	Status      int    // HTTP status of the error page
	Code        string // e.g. "KOE006", "redirect_uri_mismatch", "invalid_client"
	Description string // the page's explanation
}

func (e *AuthorizeError) Error() string {
	return fmt.Sprintf("emulator: the provider refused the authorization request with an error page (HTTP %d): %s: %s", e.Status, e.Code, e.Description)
}

// Emulator is one running provider emulator: the shared machinery (grants,
// codes, tokens, keys, faults) speaking one provider's dialect.
type Emulator struct {
	kind      Kind
	d         dialect
	opts      Options
	now       func() time.Time
	p         paths
	ln        net.Listener
	srv       *http.Server
	base      string
	done      chan struct{}
	closeOnce sync.Once

	mu          sync.Mutex
	user        User
	faults      Faults
	pending     map[string]*authRequest // consent page id -> authorization request
	codes       map[string]*authCode
	access      map[string]*accessToken
	refresh     map[string]*grant
	linked      map[string]time.Time            // subject -> connected_at; Kakao unlink removes it
	agreed      map[string]map[string]time.Time // Kakao Sync: subject -> tag -> agreed_at; Kakao unlink removes it
	calls       []Call
	keys        []*signingKey // published in the JWKS, oldest first
	active      *signingKey   // signs id_tokens
	next        *signingKey   // UnknownKid signs with it; RotateKey publishes it
	attacker    *signingKey
	jwksFetches int

	attackerCert    []byte // PEM served at attackerCertPath, made on first fetch
	attackerFetches int

	ext any // the dialect's own state (see dialect.setup)
}

// Start validates opts and starts the emulator's HTTP server.
func Start(opts Options) (*Emulator, error) {
	d, err := mustDialect(opts.Kind)
	if err != nil {
		return nil, err
	}
	if opts.ClientID == "" {
		return nil, errors.New("emulator: ClientID is required")
	}
	opts.RedirectURIs = slices.Clone(opts.RedirectURIs)
	opts.ExtraAudiences = slices.Clone(opts.ExtraAudiences)
	opts.ServiceTerms = slices.Clone(opts.ServiceTerms)
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	user := defaultUser(d, opts.User)
	if err := d.checkUser(user); err != nil {
		return nil, err
	}
	e := &Emulator{
		kind:    opts.Kind,
		d:       d,
		opts:    opts,
		now:     now,
		p:       d.paths(),
		done:    make(chan struct{}),
		user:    user,
		pending: map[string]*authRequest{},
		codes:   map[string]*authCode{},
		access:  map[string]*accessToken{},
		refresh: map[string]*grant{},
		linked:  map[string]time.Time{},
		agreed:  map[string]map[string]time.Time{},
	}
	if d.oidc() {
		k, err := newSigningKey()
		if err != nil {
			return nil, err
		}
		e.keys = []*signingKey{k}
		e.active = k
	}
	if err := d.setup(e); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen: %w", err)
	}
	e.ln = ln
	e.base = "http://" + displayAddr(ln.Addr())
	if opts.Host != "" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		e.base = "http://" + net.JoinHostPort(opts.Host, port)
	}
	mux := http.NewServeMux()
	e.routes(mux)
	e.srv = &http.Server{Handler: e.record(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(ln) }()
	return e, nil
}

func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func (e *Emulator) routes(mux *http.ServeMux) {
	mux.HandleFunc(e.p.authorize, e.handleAuthorize)
	if e.p.authorizeAlias != "" {
		mux.HandleFunc(e.p.authorizeAlias, e.handleAuthorize)
	}
	mux.HandleFunc(e.p.consent, e.handleConsent)
	mux.HandleFunc(formPostScript, e.handleFormPostScript)
	mux.HandleFunc(e.p.token, e.handleToken)
	if e.p.userinfo != "" {
		mux.HandleFunc(e.p.userinfo, e.handleUserinfo)
	}
	if e.p.jwks != "" {
		mux.HandleFunc(e.p.jwks, e.handleJWKS)
	}
	if e.p.discovery != "" {
		mux.HandleFunc(e.p.discovery, e.handleDiscovery)
	}
	if e.p.revoke != "" {
		mux.HandleFunc(e.p.revoke, e.handleRevoke)
	}
	e.d.routes(e, mux)
	if e.opts.AttackerEndpoints {
		mux.HandleFunc(attackerJWKSPath, e.handleAttacker)
		mux.HandleFunc(attackerCertPath, e.handleAttacker)
	}
}

// record stores every request in Calls before handling it.
func (e *Emulator) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		c := Call{Method: r.Method, Path: r.URL.Path, Form: cloneValues(r.Form), Authorization: r.Header.Get("Authorization")}
		e.mu.Lock()
		e.calls = append(e.calls, c)
		e.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// URL is the base URL, without a trailing slash.
func (e *Emulator) URL() string { return e.base }

// Close stops the server and aborts requests in flight (including delayed ones).
func (e *Emulator) Close() {
	e.closeOnce.Do(func() {
		close(e.done)
		_ = e.srv.Close()
	})
}

// Endpoints returns the absolute URLs of the emulator's endpoints.
func (e *Emulator) Endpoints() Endpoints {
	abs := func(p string) string {
		if p == "" {
			return ""
		}
		return e.base + p
	}
	ep := Endpoints{
		AuthURL:     abs(e.p.authorize),
		TokenURL:    abs(e.p.token),
		UserinfoURL: abs(e.p.userinfo),
		JWKSURL:     abs(e.p.jwks),
		RevokeURL:   abs(e.p.revoke),
	}
	if e.d.oidc() {
		ep.Issuer = e.base
	}
	return ep
}

// SetUser sets who consents from now on. Grants already made keep their user.
// It panics when u.Subject is not valid for the kind (Kakao: decimal digits).
func (e *Emulator) SetUser(u User) {
	u = defaultUser(e.d, u)
	if err := e.d.checkUser(u); err != nil {
		panic(err)
	}
	e.mu.Lock()
	e.user = u
	e.mu.Unlock()
}

// SetFaults replaces the current faults; the zero value is an honest provider.
func (e *Emulator) SetFaults(f Faults) {
	e.mu.Lock()
	e.faults = f
	e.mu.Unlock()
}

func (e *Emulator) currentFaults() Faults {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.faults
}

func (e *Emulator) currentUser() User {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.user
}

// Calls returns the recorded requests, oldest first.
func (e *Emulator) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Call, len(e.calls))
	for i, c := range e.calls {
		c.Form = cloneValues(c.Form)
		out[i] = c
	}
	return out
}

// CallCount returns how many requests were made to path (e.g. "/oauth/token").
func (e *Emulator) CallCount(path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.calls {
		if c.Path == path {
			n++
		}
	}
	return n
}

// JWKSFetches returns how many times the JWKS was fetched.
func (e *Emulator) JWKSFetches() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.jwksFetches
}

// AttackerJWKSFetches returns how many times the attacker's key was fetched
// from the URLs that JKUHeader and X5UHeader tokens name: the JWKS at
// /attacker/jwks.json and the certificate at /attacker/cert.pem (one counter
// for both). Neither is in discovery or Endpoints; a verifier that trusts only
// the provider's JWKS leaves it at 0.
func (e *Emulator) AttackerJWKSFetches() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.attackerFetches
}

// ---- users ----

// defaultUser is the dialect's user when u is zero, or u with the
// dialect's default subject when it has none.
func defaultUser(d dialect, u User) User {
	if u == (User{}) {
		return d.defaultUser()
	}
	if u.Subject == "" {
		u.Subject = d.defaultUser().Subject
	}
	return u
}

// isJSONInteger reports whether s is a non-negative integer in JSON number
// syntax (digits, no leading zero).
func isJSONInteger(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ---- helpers ----

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("emulator: crypto/rand: " + err.Error())
	}
	return b
}

// randToken returns a URL-safe random string carrying n random bytes.
func randToken(n int) string { return base64.RawURLEncoding.EncodeToString(randBytes(n)) }

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randAlnum returns n random characters from [A-Za-z0-9].
func randAlnum(n int) string {
	b := randBytes(n)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

// sleep waits d, or until ctx is cancelled or the emulator closes. It reports
// whether the whole delay elapsed.
func (e *Emulator) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-e.done:
		return false
	}
}

func (e *Emulator) jsonContentType() string { return e.d.jsonContentType() }

// marshal encodes v, or answers 500 and reports false.
func marshal(w http.ResponseWriter, v any) ([]byte, bool) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "emulator: "+err.Error(), http.StatusInternalServerError)
		return nil, false
	}
	return body, true
}

// writeJSON writes v as JSON. With huge set, a padding member makes the body
// larger than 2 MiB while it stays valid JSON.
func (e *Emulator) writeJSON(w http.ResponseWriter, status int, v any, huge bool) {
	body, ok := marshal(w, v)
	if !ok {
		return
	}
	if huge {
		body = padJSON(body)
	}
	w.Header().Set("Content-Type", e.jsonContentType())
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// hugePadding is how much filler HugeBody adds: well above 2 MiB.
const hugePadding = 2<<20 + 64<<10

// padJSON inserts a filler member at the start of a JSON object, so that a
// reader that truncates the body cannot decode anything useful from it.
func padJSON(obj []byte) []byte {
	if len(obj) < 2 || obj[0] != '{' {
		return obj
	}
	var b strings.Builder
	b.Grow(len(obj) + hugePadding + 32)
	b.WriteString(`{"x_padding":"`)
	b.WriteString(strings.Repeat("A", hugePadding))
	b.WriteString(`"`)
	b.Write(afterPadding(obj))
	return []byte(b.String())
}

// afterPadding is what follows a padding member put first into the JSON
// object obj: a comma and obj's members, then the closing brace.
func afterPadding(obj []byte) []byte {
	if len(obj) > 2 { // not "{}"
		return append([]byte(","), obj[1:]...)
	}
	return obj[1:]
}

func methodNotAllowed(w http.ResponseWriter, allow ...string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
}

func methodIn(r *http.Request, methods ...string) bool { return slices.Contains(methods, r.Method) }

// writeFault answers an endpoint switched to a failing status by Faults.
// endpoint is "token", "userinfo", "revoke" or "service_terms".
func (e *Emulator) writeFault(w http.ResponseWriter, endpoint string, status int, body string) {
	if body != "" {
		ct := "text/plain; charset=utf-8"
		if t := strings.TrimSpace(body); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
			ct = e.jsonContentType()
		} else if strings.HasPrefix(t, "<") {
			ct = "text/html; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		return
	}
	if status >= 500 {
		text := http.StatusText(status)
		if text == "" {
			text = "Internal Server Error"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><h1>%s</h1></body></html>\n", status, text, text)
		return
	}
	e.writeJSON(w, status, e.genericError(endpoint, status), false)
}

// genericError is the provider's usual error JSON for a status it was told to
// answer.
func (e *Emulator) genericError(endpoint string, status int) any {
	return e.d.genericError(e, endpoint, status)
}
