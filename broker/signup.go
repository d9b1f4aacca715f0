package broker

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/socialbroker/broker/internal/web"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// maxFieldRunes bounds every signup field.
const maxFieldRunes = 64

// signupForm is GET /auth/signup: the form again for a pending signup.
func (s *Server) signupForm(w http.ResponseWriter, r *http.Request) error {
	var ps pendingSignup
	if err := s.readFlowCookie(r, s.signupCookie, &ps, func() int64 { return ps.Expires }); err != nil {
		return &pageError{Status: http.StatusBadRequest, Code: codeSignupExpired, Cause: err}
	}
	keepReturnTo(r, ps.ReturnTo)
	s.renderSignup(w, r, http.StatusOK, ps, s.prefill(ps), nil, "", "")
	return nil
}

// signupSubmit is POST /auth/signup: it checks the CSRF token and every
// field, then creates the user and its identity in one transaction (which
// also burns the signup cookie), and signs the user in.
func (s *Server) signupSubmit(w http.ResponseWriter, r *http.Request) (err error) {
	if err := s.checkOrigin(r); err != nil {
		return err
	}
	var ps pendingSignup
	if err := s.readFlowCookie(r, s.signupCookie, &ps, func() int64 { return ps.Expires }); err != nil {
		return &pageError{Status: http.StatusBadRequest, Code: codeSignupExpired, Cause: err}
	}
	keepReturnTo(r, ps.ReturnTo)
	defer func() { err = s.nativeFailure(w, r, ps.Native, err) }() // an app's signup: back to the app where RFC 6749 says so
	if err := parseForm(w, r); err != nil {
		return &pageError{Status: http.StatusBadRequest, Code: codeInvalidRequest, Cause: err}
	}
	values := map[string]string{}
	for _, f := range s.cfg.Signup.Fields {
		if v := r.PostForm[f]; len(v) > 0 {
			values[f] = v[0]
		}
	}
	ticked := s.tickedTerms(ps, r.PostForm)
	if !equalStrings(r.PostForm.Get("csrf_token"), ps.CSRF) {
		s.renderSignup(w, r, http.StatusBadRequest, ps, values, ticked, "", "csrf")
		return nil
	}
	profile := map[string]string{}
	for _, f := range s.cfg.Signup.Fields {
		vals, present := r.PostForm[f]
		var msg string
		switch {
		case !present || len(vals) != 1:
			msg = "field_missing"
		case strings.TrimSpace(vals[0]) == "":
			msg = "field_blank"
		case !providers.CleanText(vals[0]):
			msg = "field_invalid"
		case utf8.RuneCountInString(strings.TrimSpace(vals[0])) > maxFieldRunes:
			msg = "field_too_long"
		}
		if msg != "" {
			s.renderSignup(w, r, http.StatusBadRequest, ps, values, ticked, f, msg)
			return nil
		}
		profile[f] = strings.TrimSpace(vals[0])
	}
	if ps.Picture != "" {
		if _, set := profile["picture"]; !set {
			profile["picture"] = ps.Picture
		}
	}
	terms := s.signupAgreements(ps, ticked)
	if len(s.missingTerms(terms)) > 0 {
		s.renderSignup(w, r, http.StatusBadRequest, ps, values, ticked, "", "terms_required")
		return nil
	}
	sum := sha256.Sum256([]byte(ps.CSRF))
	userID, err := s.createUserTerms(r.Context(), profile,
		storage.Identity{Provider: ps.Provider, Subject: ps.Subject, Profile: identityProfile(ps), GrantEnc: ps.GrantEnc},
		&storage.Once{Kind: "signup", Hash: sum[:], Expires: time.Unix(ps.Expires, 0)}, terms)
	if errors.Is(err, storage.ErrConflict) {
		s.clearFlowCookie(w, s.signupCookie)
		return &pageError{Status: http.StatusBadRequest, Code: codeSignupExpired, Cause: err}
	}
	if err != nil {
		return err
	}
	s.clearFlowCookie(w, s.signupCookie)
	s.log.InfoContext(r.Context(), "signup", "user_id", userID, "provider", ps.Provider)
	return s.signIn(w, r, userID, ps.Provider, ps.ReturnTo, ps.Native)
}

func identityProfile(ps pendingSignup) map[string]string {
	p := map[string]string{}
	if ps.Name != "" {
		p["nickname"] = ps.Name
	}
	return p
}

// prefill proposes what the provider told us (a nickname) for the form.
func (s *Server) prefill(ps pendingSignup) map[string]string {
	v := map[string]string{}
	for _, f := range s.cfg.Signup.Fields {
		if (f == "nickname" || f == "name") && ps.Name != "" {
			v[f] = ps.Name
		}
	}
	return v
}

func (s *Server) renderSignup(w http.ResponseWriter, r *http.Request, status int, ps pendingSignup, values map[string]string, ticked map[string]bool, invalid, msg string) {
	page := web.SignupPage{Action: signupPath, CSRFToken: ps.CSRF, Error: msg, Terms: s.signupTermViews(ps, ticked)}
	for _, f := range s.cfg.Signup.Fields {
		page.Fields = append(page.Fields, web.SignupField{Name: f, Value: values[f], MaxLen: maxFieldRunes, Invalid: f == invalid})
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	s.pages.Signup(w, r, status, page)
}
