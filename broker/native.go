package broker

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/socialbroker/broker/internal/nativeapps"
	"github.com/socialbroker/broker/storage"
)

// Native apps sign in through the system browser (RFC 8252): the app opens
// GET /auth/login/{provider} with its client_id, a registered redirect_uri,
// its state and a PKCE S256 challenge; the provider dance (and the signup
// form) runs as for the web; the end is a redirect to the app's
// redirect_uri with a broker code, which the app redeems at POST
// /auth/token (grant_type=authorization_code) with its code_verifier.
//
// The session is created when the code is issued (kind native), with a
// first refresh token derived from the code under a key only the broker
// has: nobody can use the session before the code is redeemed, and the
// token itself is never stored. A second use of the code revokes the
// session (RFC 6749 §4.1.2).

const (
	grantAuthorizationCode = "authorization_code"
	nativeCodeTTL          = 60 * time.Second
	// nativeCodesKept is how long a used code is remembered after it
	// expired, so that a late replay still revokes its session.
	nativeCodesKept = 24 * time.Hour
	maxAppState     = 512
)

// codeInvalidRedirectURI: a native login start whose redirect_uri is not
// registered for its client_id (or carries an extra query or fragment).
const codeInvalidRedirectURI Code = "invalid_redirect_uri"

// nativeRequest is an app's login request, checked at the start and sealed
// into the flow cookie (and the signup cookie) as it was presented.
type nativeRequest struct {
	ClientID    string `json:"c"`
	RedirectURI string `json:"u"`
	State       string `json:"s,omitempty"`
	Challenge   string `json:"x"`
}

// nativeParams are the parameters that make a login start an app's.
var nativeParams = []string{"client_id", "redirect_uri", "code_challenge", "code_challenge_method"}

// nativeStart reads an app's request from a login start: nil for a web
// login (none of nativeParams present). Every check happens before
// anything is created or any redirect is sent; a failure is a 400 page.
func (s *Server) nativeStart(r *http.Request, link bool) (*nativeRequest, error) {
	q := r.URL.Query()
	native := false
	for _, p := range nativeParams {
		native = native || q.Has(p)
	}
	if !native {
		return nil, nil
	}
	bad := func(code Code, why string) error {
		return &pageError{Status: http.StatusBadRequest, Code: code, Cause: errors.New("native login start: " + why)}
	}
	var v [7]string
	for i, name := range append(nativeParams, "state", "response_type", "return_to") {
		val, ok := queryParam(q, name)
		if !ok {
			return nil, bad(codeInvalidRequest, name+" given more than once")
		}
		v[i] = val
	}
	n := nativeRequest{ClientID: v[0], RedirectURI: v[1], Challenge: v[2], State: v[4]}
	method, responseType, returnTo := v[3], v[5], v[6]
	switch {
	case link:
		return nil, bad(codeInvalidRequest, "linking from a native app is not supported")
	case !s.cfg.NativeApps.Known(n.ClientID):
		return nil, bad(codeInvalidClient, "unknown client_id")
	case !s.cfg.NativeApps.Match(n.ClientID, n.RedirectURI):
		return nil, bad(codeInvalidRedirectURI, "redirect_uri not registered for this client")
	case returnTo != "":
		return nil, bad(codeInvalidRequest, "return_to with client_id")
	case responseType != "" && responseType != "code":
		return nil, bad(codeInvalidRequest, "response_type other than code")
	case method != "S256":
		return nil, bad(codeInvalidRequest, "code_challenge_method must be S256")
	case !validChallenge(n.Challenge):
		return nil, bad(codeInvalidRequest, "code_challenge must be 43 base64url characters (S256)")
	case len(n.State) > maxAppState || !vschars(n.State):
		return nil, bad(codeInvalidRequest, "state over 512 characters or not printable ASCII")
	}
	return &n, nil
}

// validChallenge: an S256 challenge is the unpadded base64url of 32 bytes.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := decodeToken(c) // same shape as a refresh token
	return err == nil
}

// validVerifier: RFC 7636 §4.1, 43-128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// vschars: RFC 6749 Appendix A.5, state is printable ASCII.
func vschars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// sessionToken is the first refresh token of a login's session and the
// session's kind: a fresh random token for the web; for an app, a token
// derived from a fresh broker code (returned too), handed out only when
// the code is redeemed.
func (s *Server) sessionToken(n *nativeRequest) (tok []byte, kind string, code []byte) {
	if n == nil {
		return newRefreshToken(), "web", nil
	}
	code = newRefreshToken()
	return s.codeRefresh(code), "native", code
}

// codeRefresh derives the first refresh token of a native session from its
// broker code.
func (s *Server) codeRefresh(code []byte) []byte {
	k, err := hkdf.Key(sha256.New, s.cfg.Keys.EncryptionKey, nil, "broker native-code refresh v1", 32)
	if err != nil {
		panic(err) // a 32-byte key from SHA-256 cannot fail
	}
	m := hmac.New(sha256.New, k)
	m.Write(code)
	return m.Sum(nil)
}

// nativeSignIn starts the native session of a user (after an auto signup
// or the signup form) and sends its code to the app.
func (s *Server) nativeSignIn(w http.ResponseWriter, r *http.Request, userID, idp string, n nativeRequest) error {
	tok, kind, code := s.sessionToken(&n)
	now := s.now()
	sess, err := s.store.CreateSession(r.Context(), storage.NewSession{
		UserID: userID, IDP: idp, Kind: kind, TokenHash: hashToken(tok), Now: now, ExpiresAt: now.Add(s.cfg.Tokens.RefreshTTL),
	})
	if errors.Is(err, storage.ErrDisabled) {
		return &pageError{Status: http.StatusForbidden, Code: "user_disabled", Cause: err}
	}
	if err != nil {
		return err
	}
	return s.sendCode(w, r, n, code, sess)
}

// sendCode stores the broker code of a native session just created and
// sends it to the app's redirect URI (no refresh cookie for the browser).
func (s *Server) sendCode(w http.ResponseWriter, r *http.Request, n nativeRequest, code []byte, sess storage.Session) error {
	now := s.now()
	err := s.store.CreateCode(r.Context(), storage.NativeCode{
		Hash: hashToken(code), SessionID: sess.ID, ClientID: n.ClientID, RedirectURI: n.RedirectURI,
		Challenge: n.Challenge, CreatedAt: now, ExpiresAt: now.Add(nativeCodeTTL),
	})
	if err != nil {
		// Nobody holds the session's token; drop it (best effort: it
		// expires idle otherwise).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		if derr := s.store.DiscardSession(ctx, sess.ID); derr != nil {
			s.log.Warn("native session without a code not discarded", "sid", sess.ID, "err", derr)
		}
		cancel()
		return err
	}
	redirect(w, appRedirect(n, url.Values{"code": {encodeToken(code)}}), http.StatusSeeOther)
	return nil
}

// appRedirect is the app's redirect URI with params and its state.
func appRedirect(n nativeRequest, params url.Values) string {
	if n.State != "" {
		params.Set("state", n.State)
	}
	sep := "?"
	if strings.Contains(n.RedirectURI, "?") {
		sep = "&"
	}
	return n.RedirectURI + sep + params.Encode()
}

// nativeFailure sends a native login's failure back to the app where RFC
// 6749 §4.1.2.1 has an error code for it: the user declined (or is
// disabled) → access_denied; the database or a provider unreachable →
// temporarily_unavailable; a provider's or the broker's own failure →
// server_error. error_description carries the broker's code. Anything
// else (an expired or forged flow, a signup form gone, a rate limit) stays
// the broker's error page. n is the request checked at the start, so the
// redirect URI is a registered one.
func (s *Server) nativeFailure(w http.ResponseWriter, r *http.Request, n *nativeRequest, err error) error {
	if n == nil || err == nil {
		return err
	}
	var pe *pageError
	code := codeServerError
	switch {
	case errors.As(err, &pe):
		code = pe.Code
	case errors.Is(err, storage.ErrUnavailable):
		code = codeTemporarilyUnavail
	case errors.Is(err, storage.ErrInvalid):
		return err
	}
	var appErr string
	switch code {
	case codeAccessDenied, "user_disabled":
		appErr = "access_denied"
	case codeTemporarilyUnavail, codeProviderTimeout:
		appErr = "temporarily_unavailable"
	case codeProviderError, codeInvalidResponse, codeInvalidIDToken, codeInvalidGrant, codeServerError:
		appErr = "server_error"
	default:
		return err
	}
	s.log.Info("native login failed: sent to the app", "route", r.Pattern, "code", code, "error", appErr, "err", errString(err))
	redirect(w, appRedirect(*n, url.Values{"error": {appErr}, "error_description": {string(code)}}), http.StatusSeeOther)
	return nil
}

// flowNative is the native request sealed in the request's flow cookie, or
// nil (a web login, or no usable cookie).
func (s *Server) flowNative(r *http.Request) *nativeRequest {
	var f flowState
	if s.readFlowCookie(r, s.stateCookie, &f, func() int64 { return f.Expires }) != nil {
		return nil
	}
	return f.Native
}

// codeGrant is POST /auth/token with grant_type=authorization_code: an app
// redeems its broker code with the PKCE verifier. Any presentation uses
// the code up; every refusal is the same invalid_grant.
func (s *Server) codeGrant(w http.ResponseWriter, r *http.Request) error {
	f := r.PostForm
	code, clientID, redirectURI, verifier := f.Get("code"), f.Get("client_id"), f.Get("redirect_uri"), f.Get("code_verifier")
	if code == "" || clientID == "" || redirectURI == "" || verifier == "" {
		return errBadRequest(codeInvalidRequest, "code, redirect_uri, client_id and code_verifier are required.")
	}
	if !validVerifier(verifier) {
		return errBadRequest(codeInvalidRequest, "code_verifier must be 43-128 unreserved characters (RFC 7636).")
	}
	refused := func(why string) error {
		return &apiError{Status: http.StatusBadRequest, Code: codeInvalidGrant,
			Description: "The code is invalid, expired or already used, or was issued to another client, redirect URI or verifier.",
			Cause:       errors.New(why)}
	}
	raw, err := decodeToken(code)
	if err != nil {
		return refused("malformed code")
	}
	challenge := s256(verifier)
	nc, outcome, err := s.store.RedeemCode(r.Context(), hashToken(raw), s.now(), func(c storage.NativeCode) bool {
		return c.ClientID == clientID && c.RedirectURI == redirectURI && equalStrings(challenge, c.Challenge)
	})
	if err != nil {
		return err
	}
	switch outcome {
	case storage.CodeRedeemed:
	case storage.CodeReplayed:
		s.log.WarnContext(r.Context(), "broker code used twice: its session revoked", "sid", nc.SessionID, "client_id", logSafe(clientID, nativeapps.MaxClientID))
		return refused("code replayed")
	default:
		return refused("code " + string(outcome))
	}
	profile, err := s.profileForClaims(r.Context(), nc.UserID)
	if err != nil {
		return err
	}
	access, err := s.issueAccessToken(nc.UserID, nc.SessionID, nc.IDP, profile)
	if err != nil {
		return signingError(err)
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.cfg.Tokens.AccessTTL / time.Second),
		RefreshToken: encodeToken(s.codeRefresh(raw)),
	})
	return nil
}
