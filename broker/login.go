package broker

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/socialbroker/broker/internal/web"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// errDuplicateParam: a query parameter that must appear at most once came
// twice or more.
var errDuplicateParam = errors.New("query parameter given more than once")

// queryParam returns the value of a parameter that may appear at most once;
// ok is false when it appears more often. Parsers disagree on which copy
// counts (Go takes the first, many proxies and frameworks the last), so a
// repeated security-relevant parameter is refused rather than guessed.
func queryParam(q url.Values, name string) (value string, ok bool) {
	switch v := q[name]; len(v) {
	case 0:
		return "", true
	case 1:
		return v[0], true
	}
	return "", false
}

// returnToParam is the request's return_to ("" when absent); a repeated
// one is refused.
func returnToParam(r *http.Request) (string, error) {
	raw, ok := queryParam(r.URL.Query(), "return_to")
	if !ok {
		return "", &pageError{Status: http.StatusBadRequest, Code: "return_to_not_allowed", Cause: errDuplicateParam}
	}
	return raw, nil
}

// loginPage is GET / and GET /auth/login: one button per provider, each
// carrying the (validated) return_to along.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) error {
	q := ""
	raw, err := returnToParam(r)
	if err != nil {
		return err
	}
	if raw != "" {
		rt, err := s.cfg.Redirects.Resolve(raw)
		if err != nil {
			return &pageError{Status: http.StatusBadRequest, Code: "return_to_not_allowed", Cause: err}
		}
		q = "?return_to=" + url.QueryEscape(rt)
	}
	var page web.LoginPage
	for _, p := range s.providers.All() {
		info := p.Info()
		page.Providers = append(page.Providers, web.ProviderButton{
			Name: info.Name, Type: info.Type, DisplayName: info.DisplayName,
			Href: "/auth/login/" + url.PathEscape(info.Name) + q,
		})
	}
	w.Header().Set("Cache-Control", "no-store")
	s.pages.Login(w, r, page)
	return nil
}

// loginStart is GET /auth/login/{provider}.
func (s *Server) loginStart(w http.ResponseWriter, r *http.Request) error {
	return s.startFlow(w, r, "")
}

// linkStart is GET /auth/link/{provider}: the same dance for a signed-in
// user (known by the refresh cookie), ending with the identity linked.
func (s *Server) linkStart(w http.ResponseWriter, r *http.Request) error {
	vals := cookieValues(r, refreshCookie)
	if len(vals) != 1 {
		return &pageError{Status: http.StatusUnauthorized, Code: "invalid_request", Cause: errors.New("link without a signed-in session")}
	}
	tok, err := decodeToken(vals[0])
	if err != nil {
		return &pageError{Status: http.StatusUnauthorized, Code: "invalid_request", Cause: err}
	}
	sess, err := s.store.SessionByToken(r.Context(), hashToken(tok))
	if errors.Is(err, storage.ErrNotFound) {
		return &pageError{Status: http.StatusUnauthorized, Code: "invalid_request", Cause: err}
	}
	if err != nil {
		return err
	}
	now := s.now()
	if sess.RevokedAt != nil || !now.Before(sess.ExpiresAt) || !now.Before(sess.LastUsedAt.Add(s.cfg.Tokens.RefreshIdleTTL)) {
		return &pageError{Status: http.StatusUnauthorized, Code: "invalid_request", Cause: errors.New("link with an ended session")}
	}
	return s.startFlow(w, r, sess.UserID)
}

func (s *Server) startFlow(w http.ResponseWriter, r *http.Request, linkUser string) error {
	if !s.limit(s.limits.login, r, w) {
		return &pageError{Status: http.StatusTooManyRequests, Code: "rate_limited"}
	}
	p, ok := s.providers.Get(r.PathValue("provider"))
	if !ok {
		return &pageError{Status: http.StatusNotFound, Code: "unknown_provider"}
	}
	raw, err := returnToParam(r)
	if err != nil {
		return err
	}
	returnTo, err := s.cfg.Redirects.Resolve(raw)
	if err != nil {
		return &pageError{Status: http.StatusBadRequest, Code: "return_to_not_allowed", Cause: err}
	}
	f := flowState{
		Provider: p.Info().Name, State: randomString(32), ReturnTo: returnTo, LinkUser: linkUser,
		Expires: s.now().Add(flowCookieTTL).Unix(),
	}
	challenge := ""
	if p.Info().PKCE {
		f.Verifier = randomString(32)
		challenge = s256(f.Verifier)
	}
	if p.Info().Nonce {
		f.Nonce = randomString(32)
	}
	ctx, cancel := context.WithTimeout(r.Context(), providerDeadline) // discovery, when the provider needs it
	authURL, err := p.AuthCodeURL(ctx, providers.AuthOptions{State: f.State, Nonce: f.Nonce, CodeChallenge: challenge})
	cancel()
	if err != nil {
		return providerPageError(err)
	}
	if err := s.setFlowCookie(w, stateCookie, callbackPath, f); err != nil {
		return err
	}
	redirect(w, authURL, http.StatusFound)
	return nil
}

// profileOf is what a new user's profile starts with when no form is shown.
func profileOf(id providers.Identity) map[string]string {
	p := map[string]string{}
	if id.Name != "" {
		p["nickname"] = id.Name
	}
	if id.Picture != "" {
		p["picture"] = id.Picture
	}
	return p
}
