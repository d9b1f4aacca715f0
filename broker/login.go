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

// returnTo is the request's return_to resolved against redirects (the
// default when absent); one not allowed, or repeated, is a 400 page.
func (s *Server) returnTo(r *http.Request) (string, error) {
	raw, err := returnToParam(r)
	if err != nil {
		return "", err
	}
	rt, err := s.cfg.Redirects.Resolve(raw)
	if err != nil {
		return "", &pageError{Status: http.StatusBadRequest, Code: "return_to_not_allowed", Cause: err}
	}
	return rt, nil
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
	return s.startFlow(w, r, storage.Rotation{})
}

// linkStart is GET /auth/link/{provider}: the same dance for a signed-in
// user, ending with the identity linked. Only the session's live refresh
// token starts a link (an older one is a reuse and revokes the session),
// and a start that another site sent the browser to is first confirmed on
// the broker's own page, so no site can link an account silently.
func (s *Server) linkStart(w http.ResponseWriter, r *http.Request) error {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return s.confirmLink(w, r)
	}
	vals := cookieValues(r, refreshCookie)
	if len(vals) != 1 {
		return &pageError{Status: http.StatusUnauthorized, Code: "invalid_request", Cause: errors.New("link without a signed-in session")}
	}
	sess, err := s.liveSession(r.Context(), vals[0])
	if err != nil {
		return err
	}
	if sess.Outcome != storage.Live {
		if sess.Outcome == storage.Reused {
			s.clearRefreshCookie(w)
		}
		return &pageError{Status: http.StatusUnauthorized, Code: "invalid_request", Cause: errors.New("link with a refresh token that is " + string(sess.Outcome))}
	}
	return s.startFlow(w, r, sess)
}

// confirmLink shows the link confirmation page for a cross-site start. Its
// button repeats the same request from the broker's own origin.
func (s *Server) confirmLink(w http.ResponseWriter, r *http.Request) error {
	p, ok := s.providers.Get(r.PathValue("provider"))
	if !ok {
		return &pageError{Status: http.StatusNotFound, Code: "unknown_provider"}
	}
	returnTo, err := s.returnTo(r)
	if err != nil {
		return err
	}
	name := p.Info().DisplayName
	if name == "" {
		name = p.Info().Name
	}
	w.Header().Set("Cache-Control", "no-store")
	s.pages.LinkConfirm(w, r, web.LinkConfirmPage{Provider: name, ContinueHref: r.URL.RequestURI(), CancelHref: returnTo})
	return nil
}

// startFlow sends the browser to the provider. link is the signed-in
// session a link belongs to (zero for a login).
func (s *Server) startFlow(w http.ResponseWriter, r *http.Request, link storage.Rotation) error {
	if !s.limit(s.limits.login, r, w) {
		return &pageError{Status: http.StatusTooManyRequests, Code: "rate_limited"}
	}
	p, ok := s.providers.Get(r.PathValue("provider"))
	if !ok {
		return &pageError{Status: http.StatusNotFound, Code: "unknown_provider"}
	}
	native, err := s.nativeStart(r, link.SessionID != "") // an app's login; nil for the web
	if err != nil {
		return err
	}
	returnTo, err := s.returnTo(r)
	if err != nil {
		return err
	}
	keepReturnTo(r, returnTo)
	opts, err := authOptions(r.URL.Query(), link.SessionID != "")
	if err != nil {
		return err
	}
	f := flowState{
		Provider: p.Info().Name, State: randomString(32), ReturnTo: returnTo,
		LinkUser: link.UserID, LinkSession: link.SessionID,
		Expires: s.now().Add(flowCookieTTL).Unix(), Native: native,
	}
	challenge := ""
	if p.Info().PKCE {
		f.Verifier = randomString(32)
		challenge = s256(f.Verifier)
	}
	if p.Info().Nonce {
		f.Nonce = randomString(32)
	}
	opts.State, opts.Nonce, opts.CodeChallenge = f.State, f.Nonce, challenge
	ctx, cancel := context.WithTimeout(r.Context(), providerDeadline) // discovery, when the provider needs it
	authURL, err := p.AuthCodeURL(ctx, opts)
	cancel()
	if err != nil {
		return providerPageError(err)
	}
	if err := s.setFlowCookie(w, s.stateCookie, f); err != nil {
		return err
	}
	redirect(w, authURL, http.StatusFound)
	return nil
}

// maxLoginHint bounds the login_hint passed on to a provider.
const maxLoginHint = 256

// authOptions reads prompt (login, consent or select_account; each
// provider maps it to its own spelling) and login_hint from a login or
// link start. A link without a prompt asks for the account chooser, so the
// person sees which provider account is about to be linked.
func authOptions(q url.Values, link bool) (providers.AuthOptions, error) {
	var o providers.AuthOptions
	prompt, ok1 := queryParam(q, "prompt")
	hint, ok2 := queryParam(q, "login_hint")
	if !ok1 || !ok2 {
		return o, &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errDuplicateParam}
	}
	switch prompt {
	case "", "login", "consent", "select_account":
	default:
		return o, &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errors.New("prompt must be login, consent or select_account")}
	}
	if len(hint) > maxLoginHint || !providers.CleanText(hint) {
		return o, &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errors.New("login_hint over 256 bytes or not text")}
	}
	if prompt == "" && link {
		prompt = "select_account"
	}
	o.Prompt, o.LoginHint = providers.Prompt(prompt), hint
	return o, nil
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
