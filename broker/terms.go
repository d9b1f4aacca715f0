package broker

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/socialbroker/broker/internal/web"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// Consent to the service's terms at signup (signup.terms). A new user is
// created only with every required term agreed: on the signup form (source
// "form"), or on the provider's consent screen (Kakao Sync's
// service_terms, source the provider's name). Returning users are never
// asked again.

// Term is one entry of signup.terms: the tag (the checkbox value), whether
// signing up needs it, and the URL of its text.
type Term struct {
	Tag      string
	Required bool
	URL      string
}

// agreedTerm is an agreement carried by the signup cookie: the tag and the
// provider's time of agreement (unix seconds). Its source is the pending
// signup's provider.
type agreedTerm struct {
	Tag string `json:"g"`
	At  int64  `json:"a"`
}

// termsRequired is the refusal of a signup that lacks a required term:
// the 403 error page terms_required on browser flows, the same code as JSON
// on the API (errors.As finds the one each adapter looks for).
func termsRequired(missing []string) error {
	cause := errors.New("required terms not agreed: " + strings.Join(missing, ","))
	return errors.Join(
		&pageError{Status: http.StatusForbidden, Code: codeTermsRequired, Cause: cause},
		&apiError{Status: http.StatusForbidden, Code: codeTermsRequired,
			Description: "This account has not agreed to the service's required terms: sign up in the browser.", Cause: cause},
	)
}

// term returns the configured term tag.
func (s *Server) term(tag string) (Term, bool) {
	for _, t := range s.cfg.Signup.Terms {
		if t.Tag == tag {
			return t, true
		}
	}
	return Term{}, false
}

// missingTerms is the required tags that agreed lacks.
func (s *Server) missingTerms(agreed []storage.TermAgreement) []string {
	var out []string
	for _, t := range s.cfg.Signup.Terms {
		if t.Required && !slices.ContainsFunc(agreed, func(a storage.TermAgreement) bool { return a.Tag == t.Tag }) {
			out = append(out, t.Tag)
		}
	}
	return out
}

// providerTerms reads, for a new identity, the terms its provider's consent
// screen collected (Kakao Sync). Only configured tags are kept; a time of
// agreement that is missing or in the future becomes now. asked is the
// tags the provider was asked to show (nil when it asks none). An error is
// the provider's (*providers.Error).
func (s *Server) providerTerms(ctx context.Context, p providers.Provider, id providers.Identity) (agreed []storage.TermAgreement, asked []string, err error) {
	tr, ok := p.(providers.TermsReader)
	if !ok || len(tr.TermsTags()) == 0 || len(s.cfg.Signup.Terms) == 0 {
		return nil, nil, nil
	}
	got, err := tr.AgreedTerms(ctx, id.Subject, id.Grant)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	for _, t := range got {
		if _, ok := s.term(t.Tag); !ok || slices.ContainsFunc(agreed, func(a storage.TermAgreement) bool { return a.Tag == t.Tag }) {
			continue
		}
		at := t.AgreedAt
		if at.IsZero() || at.After(now) {
			at = now
		}
		agreed = append(agreed, storage.TermAgreement{Tag: t.Tag, AgreedAt: at.UTC(), Source: id.Provider})
	}
	return agreed, slices.Clone(tr.TermsTags()), nil
}

// signupTermsOf turns a pending signup's provider agreements into records.
func signupTermsOf(ps pendingSignup) []storage.TermAgreement {
	out := make([]storage.TermAgreement, 0, len(ps.Terms))
	for _, t := range ps.Terms {
		out = append(out, storage.TermAgreement{Tag: t.Tag, AgreedAt: time.Unix(t.At, 0).UTC(), Source: ps.Provider})
	}
	return out
}

// formTerms is what the signup form asks: every configured term not agreed
// at the provider, except optional ones the provider already asked about
// (the user declined them there).
func (s *Server) formTerms(ps pendingSignup) []Term {
	var out []Term
	for _, t := range s.cfg.Signup.Terms {
		agreed := slices.ContainsFunc(ps.Terms, func(a agreedTerm) bool { return a.Tag == t.Tag })
		declined := !t.Required && slices.Contains(ps.TermsAsked, t.Tag)
		if !agreed && !declined {
			out = append(out, t)
		}
	}
	return out
}

// tickedTerms reads the form's terms checkboxes: the values of "terms" that
// the form asked for (anything else is ignored, never stored), or all of
// them with agree_all.
func (s *Server) tickedTerms(ps pendingSignup, form url.Values) map[string]bool {
	ticked := map[string]bool{}
	all := form.Has("agree_all")
	for _, t := range s.formTerms(ps) {
		if all || slices.Contains(form["terms"], t.Tag) {
			ticked[t.Tag] = true
		}
	}
	return ticked
}

// signupAgreements is every agreement of a signup being submitted: the
// provider's, then the form's (source form, at now).
func (s *Server) signupAgreements(ps pendingSignup, ticked map[string]bool) []storage.TermAgreement {
	out := signupTermsOf(ps)
	now := s.now().UTC()
	for _, t := range s.formTerms(ps) {
		if ticked[t.Tag] {
			out = append(out, storage.TermAgreement{Tag: t.Tag, AgreedAt: now, Source: "form"})
		}
	}
	return out
}

// signupTermViews are the form's checkboxes.
func (s *Server) signupTermViews(ps pendingSignup, ticked map[string]bool) []web.SignupTerm {
	var out []web.SignupTerm
	for _, t := range s.formTerms(ps) {
		out = append(out, web.SignupTerm{Tag: t.Tag, URL: t.URL, Required: t.Required, Checked: ticked[t.Tag]})
	}
	return out
}

// meTerm is one agreement in /auth/me.
type meTerm struct {
	Tag      string    `json:"tag"`
	AgreedAt time.Time `json:"agreed_at"`
	Source   string    `json:"source"`
}

func meTerms(ts []storage.TermAgreement) []meTerm {
	out := make([]meTerm, 0, len(ts))
	for _, t := range ts {
		out = append(out, meTerm{Tag: t.Tag, AgreedAt: t.AgreedAt.UTC(), Source: t.Source})
	}
	return out
}

// createUser creates a user without agreements: only possible while no
// term is required (see createUserTerms).
func (s *Server) createUser(ctx context.Context, profile map[string]string, ident storage.Identity, once *storage.Once) (string, error) {
	return s.createUserTerms(ctx, profile, ident, once, nil)
}

// newIdentityTerms is the callback's step for a new identity: the terms
// its provider collected. A failure of the provider's terms API fails the
// login under signup.mode auto (no user without its agreements); under
// form it is logged and the form asks for every term instead.
func (s *Server) newIdentityTerms(ctx context.Context, p providers.Provider, id providers.Identity) (agreed []storage.TermAgreement, asked []string, err error) {
	agreed, asked, err = s.providerTerms(ctx, p, id)
	if err != nil && s.cfg.Signup.Mode != "auto" {
		s.log.Warn("provider terms not read; the signup form asks for every term", "provider", id.Provider, "err", err)
		return nil, nil, nil
	}
	return agreed, asked, err
}

// setPendingTerms puts the provider's agreements into a pending signup.
func setPendingTerms(ps *pendingSignup, agreed []storage.TermAgreement, asked []string) {
	for _, a := range agreed {
		ps.Terms = append(ps.Terms, agreedTerm{Tag: a.Tag, At: a.AgreedAt.Unix()})
	}
	ps.TermsAsked = asked
}
