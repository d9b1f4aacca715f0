package broker

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// providerDeadline bounds all provider calls of one request (discovery,
// token, JWKS, userinfo), so a login against a hanging provider fails well
// within 30 s.
const providerDeadline = 25 * time.Second

// callback is GET /auth/callback/{provider}. The state is checked before
// anything is sent to the provider; the code is exchanged server-side; the
// identity is mapped by (provider, subject) only.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) error {
	if !s.limit(s.limits.callback, r, w) {
		return &pageError{Status: http.StatusTooManyRequests, Code: "rate_limited"}
	}
	err := s.finishLogin(w, r)
	var pe *pageError
	if errors.As(err, &pe) {
		// Best effort: the audit row must not turn a clean refusal into a 503.
		aerr := s.store.Audit(r.Context(), storage.AuditEntry{
			At: s.now(), Type: "login_failed", Provider: logSafe(r.PathValue("provider"), 64), Detail: string(pe.Code),
		})
		if aerr != nil {
			s.log.WarnContext(r.Context(), "audit row not written", "type", "login_failed", "err", aerr)
		}
	}
	if err != nil {
		return s.nativeFailure(w, r, s.flowNative(r), err) // an app's login: back to the app where RFC 6749 says so
	}
	return nil
}

// finishLogin is the callback past its rate limit.
func (s *Server) finishLogin(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	var f flowState
	err := s.readFlowCookie(r, s.stateCookie, &f, func() int64 { return f.Expires })
	if err != nil {
		if s.reloadedSignup(w, r) {
			return nil
		}
		s.clearFlowCookie(w, s.stateCookie)
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_state", Cause: err}
	}
	s.clearFlowCookie(w, s.stateCookie)
	keepReturnTo(r, f.ReturnTo)
	q, posted, err := s.callbackParams(w, r)
	if err != nil {
		return err
	}
	name := r.PathValue("provider")
	state, ok := queryParam(q, "state")
	if !ok || f.Provider != name || state == "" || !equalStrings(state, f.State) {
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_state", Cause: errors.New("state does not match this browser's login")}
	}
	p, ok := s.providers.Get(name)
	if !ok {
		return &pageError{Status: http.StatusNotFound, Code: "unknown_provider"}
	}
	authErr, okErr := queryParam(q, "error")
	code, okCode := queryParam(q, "code")
	if !okErr || !okCode {
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errDuplicateParam}
	}
	if e := authErr; e != "" {
		code := providers.CodeProviderError
		if e == "access_denied" || e == "consent_required" || e == "login_required" || e == "user_cancelled_authorize" {
			code = providers.CodeAccessDenied
		}
		s.metrics.logins.WithLabelValues(name, code).Inc()
		return providerPageError(&providers.Error{Code: code, Cause: errors.New("authorize error " + logSafe(e, 40))})
	}
	if code == "" || len(code) > 2048 {
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errors.New("no code")}
	}
	if f.LinkUser != "" {
		if err := s.checkLinkSession(w, r, f); err != nil {
			return err
		}
	}
	stateHash := sha256.Sum256([]byte(f.State))
	err = s.store.UseOnce(r.Context(), storage.Once{Kind: "state", Hash: stateHash[:], Expires: time.Unix(f.Expires, 0)})
	if errors.Is(err, storage.ErrConflict) {
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_state", Cause: errors.New("state replayed")}
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), providerDeadline)
	defer cancel()
	id, err := p.Exchange(ctx, providers.Exchange{Code: code, CodeVerifier: f.Verifier, Nonce: f.Nonce, State: f.State, Posted: posted})
	if err == nil {
		id, err = providers.Clean(id)
	}
	if err != nil {
		s.metrics.logins.WithLabelValues(name, providers.ErrorCode(err)).Inc()
		return providerPageError(err)
	}
	id.Provider = name
	grantEnc, err := s.sealGrant(id)
	if err != nil {
		return err
	}
	if f.LinkUser != "" {
		return s.finishLink(w, r, f, id, grantEnc)
	}
	// A returning user: grant kept and session started in one statement.
	tok, kind, appCode := s.sessionToken(f.Native)
	now := s.now()
	sess, err := s.store.SignIn(r.Context(), storage.SignIn{
		Provider: name, Subject: id.Subject, GrantEnc: grantEnc, TokenHash: hashToken(tok),
		Now: now, ExpiresAt: now.Add(s.cfg.Tokens.RefreshTTL), Kind: kind,
	})
	switch {
	case err == nil:
		s.metrics.logins.WithLabelValues(name, "ok").Inc()
		s.log.InfoContext(r.Context(), "login", "user_id", sess.UserID, "provider", name)
		if f.Native != nil {
			return s.sendCode(w, r, *f.Native, appCode, sess)
		}
		s.setRefreshCookie(w, encodeToken(tok), sess.ExpiresAt)
		redirect(w, f.ReturnTo, http.StatusSeeOther)
		return nil
	case errors.Is(err, storage.ErrDisabled):
		return &pageError{Status: http.StatusForbidden, Code: "user_disabled", Cause: err}
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	// A new identity.
	agreed, asked, err := s.newIdentityTerms(ctx, p, id)
	if err != nil {
		s.metrics.logins.WithLabelValues(name, providers.ErrorCode(err)).Inc()
		return providerPageError(err)
	}
	if s.cfg.Signup.Mode == "auto" {
		userID, err := s.createUserTerms(r.Context(), profileOf(id), storage.Identity{Provider: name, Subject: id.Subject, Profile: profileOf(id), GrantEnc: grantEnc}, nil, agreed)
		if err != nil {
			return err
		}
		s.metrics.logins.WithLabelValues(name, "signup").Inc()
		s.log.InfoContext(r.Context(), "signup", "user_id", userID, "provider", name)
		return s.signIn(w, r, userID, name, f.ReturnTo, f.Native)
	}
	// The person proved this provider account just now: a revocation still
	// queued for it (an account deleted moments ago) would end the grant
	// the signup is about to use.
	if err := s.store.CancelRevocations(r.Context(), name, id.Subject); err != nil {
		return err
	}
	ps := pendingSignup{
		Provider: name, Subject: id.Subject, State: f.State, Name: id.Name, Picture: id.Picture, GrantEnc: grantEnc,
		ReturnTo: f.ReturnTo, CSRF: randomString(32), Expires: s.now().Add(flowCookieTTL).Unix(), Native: f.Native,
	}
	setPendingTerms(&ps, agreed, asked)
	if err := s.setFlowCookie(w, s.signupCookie, ps); err != nil {
		return err
	}
	s.metrics.logins.WithLabelValues(name, "signup_form").Inc()
	s.renderSignup(w, r, http.StatusOK, ps, s.prefill(ps), nil, "", "")
	return nil
}

// reloadedSignup answers a reload of the callback URL that showed the
// signup form (its state is used, but the form's cookie is still there):
// the form again, rather than "sign-in expired".
func (s *Server) reloadedSignup(w http.ResponseWriter, r *http.Request) bool {
	var ps pendingSignup
	if s.readFlowCookie(r, s.signupCookie, &ps, func() int64 { return ps.Expires }) != nil {
		return false
	}
	state, ok := queryParam(r.URL.Query(), "state")
	if !ok || ps.State == "" || ps.Provider != r.PathValue("provider") || !equalStrings(state, ps.State) {
		return false
	}
	keepReturnTo(r, ps.ReturnTo)
	s.renderSignup(w, r, http.StatusOK, ps, s.prefill(ps), nil, "", "")
	return true
}

// createUserTerms creates a user with its first identity and its
// agreements to the terms, refusing (termsRequired) when a required term
// is not among them. When the identity was created meanwhile (two
// first-time callbacks at once, a double submit), the existing owner is
// returned: one user, never a 500.
func (s *Server) createUserTerms(ctx context.Context, profile map[string]string, ident storage.Identity, once *storage.Once, terms []storage.TermAgreement) (string, error) {
	if missing := s.missingTerms(terms); len(missing) > 0 {
		return "", termsRequired(missing)
	}
	u, err := s.store.CreateUser(ctx, storage.NewUser{Now: s.now(), Profile: profile, Identity: ident, Once: once, Terms: terms})
	if err == nil {
		return u.ID, nil
	}
	if !errors.Is(err, storage.ErrConflict) {
		return "", err
	}
	userID, lerr := s.store.IdentityUser(ctx, ident.Provider, ident.Subject)
	if lerr == nil && once == nil {
		return userID, nil
	}
	if lerr != nil && !errors.Is(lerr, storage.ErrNotFound) {
		return "", lerr
	}
	return "", err
}

// signIn starts a session, sets the refresh cookie and sends the browser
// to return_to; for an app's login (native non-nil), it sends the app its
// code instead.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, userID, idp, returnTo string, native *nativeRequest) error {
	if native != nil {
		return s.nativeSignIn(w, r, userID, idp, *native)
	}
	iss, _, err := s.startSession(r.Context(), userID, idp, "web")
	if errors.Is(err, storage.ErrDisabled) {
		return &pageError{Status: http.StatusForbidden, Code: "user_disabled", Cause: err}
	}
	if err != nil {
		return err
	}
	s.setRefreshCookie(w, iss.refresh, iss.expires)
	redirect(w, returnTo, http.StatusSeeOther)
	return nil
}

// checkLinkSession lets a link callback go on only in the browser that
// holds the live refresh token of the session that started the link: a
// flow cookie planted in another browser, or a session ended meanwhile
// (logout, revocation, reuse), completes nothing.
func (s *Server) checkLinkSession(w http.ResponseWriter, r *http.Request, f flowState) error {
	vals := cookieValues(r, refreshCookie)
	if len(vals) != 1 || f.LinkSession == "" {
		return &pageError{Status: http.StatusUnauthorized, Code: "invalid_request", Cause: errors.New("link callback without the session that started it")}
	}
	sess, err := s.liveSession(r.Context(), vals[0])
	if err != nil {
		return err
	}
	if sess.Outcome == storage.Reused {
		s.clearRefreshCookie(w)
	}
	if sess.Outcome != storage.Live || sess.SessionID != f.LinkSession || sess.UserID != f.LinkUser {
		return &pageError{Status: http.StatusUnauthorized, Code: "invalid_request", Cause: errors.New("link callback from another session, or one that ended")}
	}
	return nil
}

// finishLink attaches a freshly proven identity to the user whose session
// started the link, while that session is still live. An identity owned by
// anyone is a 409: nothing changes.
func (s *Server) finishLink(w http.ResponseWriter, r *http.Request, f flowState, id providers.Identity, grantEnc []byte) error {
	_, err := s.store.LinkIdentity(r.Context(), f.LinkSession, storage.Identity{
		Provider: id.Provider, Subject: id.Subject, Profile: profileOf(id), GrantEnc: grantEnc,
	}, s.now())
	if errors.Is(err, storage.ErrConflict) {
		// Linking an identity the user already has is a no-op, not a conflict.
		if owner, lerr := s.store.IdentityUser(r.Context(), id.Provider, id.Subject); lerr == nil && owner == f.LinkUser {
			err = nil
		}
	}
	switch {
	case errors.Is(err, storage.ErrConflict):
		return &pageError{Status: http.StatusConflict, Code: "identity_conflict", Cause: err}
	case errors.Is(err, storage.ErrNotFound):
		return &pageError{Status: http.StatusUnauthorized, Code: "invalid_request", Cause: errors.New("linking session ended")}
	case err != nil:
		return err
	}
	s.metrics.logins.WithLabelValues(id.Provider, "linked").Inc()
	s.log.InfoContext(r.Context(), "identity linked", "user_id", f.LinkUser, "provider", id.Provider)
	redirect(w, f.ReturnTo, http.StatusSeeOther)
	return nil
}

// sealGrant encrypts the provider's tokens, bound to the identity, for a
// later revocation. Nil when the provider gave none.
func (s *Server) sealGrant(id providers.Identity) ([]byte, error) {
	if id.Grant.AccessToken == "" && id.Grant.RefreshToken == "" {
		return nil, nil
	}
	b, err := json.Marshal(id.Grant)
	if err != nil {
		return nil, err
	}
	return s.grants.Seal(b, grantAD(id.Provider, id.Subject)), nil
}

func (s *Server) openGrant(provider, subject string, enc []byte) (providers.Grant, error) {
	var g providers.Grant
	if enc == nil {
		return g, nil
	}
	b, err := s.grants.Open(enc, grantAD(provider, subject))
	if err != nil {
		return g, err
	}
	err = json.Unmarshal(b, &g)
	return g, err
}

func grantAD(provider, subject string) []byte {
	return []byte("grant\x00" + provider + "\x00" + subject)
}

// logSafe keeps at most n characters of an outside value that are plain
// code characters (letters, digits, '_', '-', '.'), for a log line.
func logSafe(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' {
			b = append(b, c)
		}
	}
	return string(b)
}
