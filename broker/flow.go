package broker

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"time"
)

// Login flows keep their secrets in short-lived cookies sealed with
// securecookie (HMAC-signed, AES-encrypted): nothing is stored server-side
// until a callback succeeds, and a broker restart loses nothing.
const (
	flowCookieTTL = 10 * time.Minute
	callbackPath  = "/auth/callback/"
	signupPath    = "/auth/signup"
)

// flowCookie names a flow cookie and the path it is sent to.
type flowCookie struct{ name, path string }

// flowCookies returns the state and signup cookies. Under an https issuer
// they carry the __Host- prefix, which browsers accept only when set by
// this very host over https with Path=/ and no Domain: a sibling subdomain
// or a plain-http page cannot plant one (login and link CSRF).
func flowCookies(httpsIssuer bool) (state, signup flowCookie) {
	if httpsIssuer {
		return flowCookie{"__Host-broker_login", "/"}, flowCookie{"__Host-broker_signup", "/"}
	}
	// The signup cookie also reaches the callback: a reload of the callback
	// that showed the form shows it again.
	return flowCookie{"broker_login", callbackPath}, flowCookie{"broker_signup", "/auth/"}
}

// flowState is sealed into the state cookie by /auth/login/{provider} and
// /auth/link/{provider}, and opened by the callback.
type flowState struct {
	Provider    string `json:"p"`
	State       string `json:"s"`
	Nonce       string `json:"n,omitempty"`
	Verifier    string `json:"v,omitempty"`
	ReturnTo    string `json:"r"`
	LinkUser    string `json:"u,omitempty"` // set for linking: the signed-in user
	LinkSession string `json:"l,omitempty"` // and the session that started the link
	Expires     int64  `json:"e"`           // unix seconds; checked besides securecookie's own timestamp

	Native *nativeRequest `json:"a,omitempty"` // an app's login (native.go); ReturnTo unused then
}

// pendingSignup is sealed into the signup cookie when a new identity has to
// complete the signup form.
type pendingSignup struct {
	Provider string `json:"p"`
	State    string `json:"st,omitempty"` // the login's state: a reload of its callback shows the form again
	Subject  string `json:"s"`
	Name     string `json:"n,omitempty"`
	Picture  string `json:"i,omitempty"`
	GrantEnc []byte `json:"g,omitempty"`
	ReturnTo string `json:"r"`
	CSRF     string `json:"c"`
	Expires  int64  `json:"e"`
	// Terms agreed on the provider's consent screen (terms.go), and the
	// tags that screen was asked to show.
	Terms      []agreedTerm `json:"t,omitempty"`
	TermsAsked []string     `json:"ta,omitempty"`

	Native *nativeRequest `json:"a,omitempty"` // an app's login (native.go)
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func equalStrings(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (s *Server) setFlowCookie(w http.ResponseWriter, c flowCookie, v any) error {
	enc, err := s.cookies.Encode(c.name, v)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: c.name, Value: enc, Path: c.path, MaxAge: int(flowCookieTTL / time.Second),
		HttpOnly: true, Secure: s.cfg.Cookies.Secure, SameSite: http.SameSiteLaxMode,
	})
	return nil
}

func (s *Server) clearFlowCookie(w http.ResponseWriter, c flowCookie) {
	http.SetCookie(w, &http.Cookie{
		Name: c.name, Value: "", Path: c.path, MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.Cookies.Secure, SameSite: http.SameSiteLaxMode,
	})
}

var errFlowCookie = errors.New("flow cookie missing, duplicated, forged or expired")

// readFlowCookie opens exactly one sealed cookie c into v. A
// duplicated name is refused: which one the browser put first is not
// something to guess about.
func (s *Server) readFlowCookie(r *http.Request, c flowCookie, v any, expires func() int64) error {
	vals := cookieValues(r, c.name)
	if len(vals) != 1 {
		return errFlowCookie
	}
	if err := s.cookies.Decode(c.name, vals[0], v); err != nil {
		return errFlowCookie
	}
	if s.now().Unix() >= expires() {
		return errFlowCookie
	}
	return nil
}

// redirect answers 303 with a Location built by the broker itself (from a
// validated return_to or a provider URL), not rewritten by http.Redirect.
func redirect(w http.ResponseWriter, location string, status int) {
	h := w.Header()
	h.Set("Location", location)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
}
