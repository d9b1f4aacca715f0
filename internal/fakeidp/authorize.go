package fakeidp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"html/template"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

const (
	codeTTL    = 10 * time.Minute // authorization codes
	consentTTL = 30 * time.Minute // an open consent page
)

// authRequest is a validated authorization request waiting for consent.
type authRequest struct {
	clientID    string
	redirectURI string
	state       string
	nonce       string
	challenge   string
	method      string // "S256" or "plain" when challenge is set
	scopes      []string
	offline     bool // Google access_type=offline
	formPost    bool // response_mode=form_post: the callback is a POSTed form
	created     time.Time
	terms       []ServiceTerm // Kakao Sync: the terms this request may show (service_terms)
	shownTerms  []ServiceTerm // the terms its consent page shows (not agreed yet)
}

// authCode is an issued, not yet redeemed authorization code.
type authCode struct {
	req      *authRequest
	user     User
	issued   time.Time
	authTime time.Time
}

// authzError is a refused authorization request: an error page when page is
// set (client or redirect URI cannot be trusted), else an error redirect.
type authzError struct {
	page   bool
	status int
	code   string
	desc   string
}

func (e *Emulator) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if !methodIn(r, http.MethodGet) {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	q := r.URL.Query()
	req, aerr := e.validateAuthorize(q)
	if aerr != nil {
		if aerr.page || req == nil {
			e.renderError(w, aerr)
			return
		}
		e.redirectError(w, r, req, aerr.code, aerr.desc)
		return
	}
	id := randToken(24)
	u := e.currentUser()
	e.mu.Lock()
	req.shownTerms = e.termsToShowLocked(req, u)
	e.pending[id] = req
	e.mu.Unlock()
	e.renderConsent(w, id, req, u)
}

// validateAuthorize checks an authorization request the way the provider
// does. A nil request with an error means an error page.
func (e *Emulator) validateAuthorize(q url.Values) (*authRequest, *authzError) {
	clientID := q.Get("client_id")
	if clientID != e.opts.ClientID {
		return nil, e.d.invalidClient(clientID)
	}
	redirectURI := q.Get("redirect_uri")
	if !slices.Contains(e.opts.RedirectURIs, redirectURI) {
		return nil, e.d.redirectMismatch(redirectURI)
	}
	req := &authRequest{
		clientID:    clientID,
		redirectURI: redirectURI,
		state:       q.Get("state"),
		nonce:       q.Get("nonce"),
		created:     e.now(),
	}
	if rt := q.Get("response_type"); rt != "code" {
		return req, e.d.badResponseType(rt)
	}
	scopes, aerr := e.d.parseScopes(q.Get("scope"))
	if aerr != nil {
		return req, aerr
	}
	req.scopes = scopes
	if aerr := e.d.authorizeParams(e, q, req); aerr != nil {
		return req, aerr
	}
	return req, nil
}

// parsePKCE records the code challenge; page makes its errors error pages
// instead of error redirects.
func (e *Emulator) parsePKCE(q url.Values, req *authRequest, page bool) *authzError {
	challenge := q.Get("code_challenge")
	method := q.Get("code_challenge_method")
	if challenge == "" {
		return nil
	}
	if method == "" {
		method = "plain" // RFC 7636 default
	}
	bad := func(desc string) *authzError {
		if page {
			return &authzError{page: true, status: 400, code: "invalid_request", desc: desc}
		}
		return &authzError{code: "invalid_request", desc: desc}
	}
	if !slices.Contains(e.d.pkceMethods(), method) {
		return bad("Unsupported code_challenge_method: " + method)
	}
	if method == "S256" && !isS256Challenge(challenge) {
		return bad("Invalid code_challenge: it must be the base64url SHA-256 of the code_verifier (43 characters).")
	}
	if method == "plain" && !validVerifier(challenge) {
		return bad("Invalid code_challenge.")
	}
	req.challenge = challenge
	req.method = method
	return nil
}

func isS256Challenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// validVerifier checks RFC 7636's code_verifier syntax: 43-128 characters of
// [A-Za-z0-9-._~].
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

func pkceMatches(method, challenge, verifier string) bool {
	if !validVerifier(verifier) {
		return false
	}
	if method == "plain" {
		return verifier == challenge
	}
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:]) == challenge
}

// handleConsent receives the consent form.
func (e *Emulator) handleConsent(w http.ResponseWriter, r *http.Request) {
	if !methodIn(r, http.MethodPost) {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	id := r.PostForm.Get("request_id")
	action := r.PostForm.Get("action")
	now := e.now()
	e.mu.Lock()
	req, ok := e.pending[id]
	if ok {
		delete(e.pending, id)
	}
	u := e.user
	e.mu.Unlock()
	if !ok || now.Sub(req.created) > consentTTL {
		e.renderError(w, &authzError{page: true, status: 400, code: "invalid_request", desc: e.text("The consent request is unknown, already answered or expired. Start the login again.", "동의 요청이 만료되었거나 이미 처리되었습니다. 처음부터 다시 로그인해 주세요.")})
		return
	}
	switch action {
	case "approve":
		agree, aerr := e.consentTerms(req, r.PostForm["service_terms"])
		if aerr != nil {
			e.renderError(w, aerr)
			return
		}
		code := e.d.newCode()
		e.mu.Lock()
		e.recordTermsLocked(u.Subject, agree, now)
		e.codes[code] = &authCode{req: req, user: u, issued: now, authTime: now}
		_, linked := e.linked[u.Subject]
		if !linked {
			e.linked[u.Subject] = now
		}
		e.mu.Unlock()
		v := url.Values{"code": {code}}
		if req.state != "" {
			v.Set("state", req.state)
		}
		e.d.approved(e, req, u, !linked, v)
		e.callBack(w, r, req, v)
	case "deny":
		e.redirectError(w, r, req, e.d.deniedCode(), e.d.denied())
	default:
		http.Error(w, "emulator: action must be approve or deny", http.StatusBadRequest)
	}
}

func (e *Emulator) redirectError(w http.ResponseWriter, r *http.Request, req *authRequest, code, desc string) {
	v := url.Values{"error": {code}}
	if desc != "" {
		v.Set("error_description", desc)
	}
	if req.state != "" {
		v.Set("state", req.state)
	}
	e.callBack(w, r, req, v)
}

// callBack sends the browser back to the client with v: a redirect with v
// in the query, or, for response_mode=form_post, a page whose form POSTs v
// to the redirect URI (submitted by a small script, or by hand).
func (e *Emulator) callBack(w http.ResponseWriter, r *http.Request, req *authRequest, v url.Values) {
	target, err := url.Parse(req.redirectURI)
	if err != nil {
		http.Error(w, "emulator: bad redirect URI", http.StatusInternalServerError)
		return
	}
	if req.formPost {
		p := formPostData{Action: req.redirectURI, Script: formPostScript}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p.Fields = append(p.Fields, formField{Name: k, Value: v.Get(k)})
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = formPostTmpl.Execute(w, p)
		return
	}
	q := target.Query()
	for k := range v {
		q.Set(k, v.Get(k))
	}
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// formPostScript submits the form_post page's form.
const formPostScript = "/form_post.js"

func (e *Emulator) handleFormPostScript(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	_, _ = w.Write([]byte("document.getElementById('form_post').submit();\n"))
}

func (e *Emulator) text(en, ko string) string {
	if e.d.korean() {
		return ko
	}
	return en
}

// ---- HTML ----

var consentTmpl = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f4f4;margin:0}
main{max-width:26rem;margin:3rem auto;background:#fff;border-radius:12px;padding:1.5rem 2rem;box-shadow:0 1px 4px rgba(0,0,0,.15)}
.brand{font-weight:700;color:{{.Color}}}
ul{padding-left:1.2rem}
button{font-size:1rem;padding:.7rem 1.2rem;border-radius:8px;border:1px solid #ccc;margin-right:.5rem;cursor:pointer}
#approve{background:{{.Color}};border-color:{{.Color}};color:{{.ButtonText}}}
</style>
</head>
<body>
<main id="consent-page" data-provider="{{.Provider}}">
<p class="brand">{{.Brand}}</p>
<h1 id="client">{{.App}}</h1>
<p id="user">{{.Greeting}}</p>
<h2>{{.ItemsHeading}}</h2>
<ul id="scopes">
{{range .Items}}<li>{{.}}</li>
{{end}}</ul>
<form id="consent" method="post" action="{{.Action}}">
<input type="hidden" name="request_id" value="{{.RequestID}}">
{{if .Terms}}<fieldset id="service-terms"><legend>{{.TermsHeading}}</legend>
{{range .Terms}}<label><input type="checkbox" name="service_terms" value="{{.Tag}}"{{if .Required}} data-required="true"{{end}}> {{.Label}}</label><br>
{{end}}</fieldset>{{end}}
<button id="approve" type="submit" name="action" value="approve">{{.ApproveLabel}}</button>
<button id="deny" type="submit" name="action" value="deny">{{.DenyLabel}}</button>
</form>
</main>
</body>
</html>
`))

var errorTmpl = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
</head>
<body>
<main id="error" data-error="{{.Code}}" data-error-description="{{.Desc}}">
<p>{{.Brand}}</p>
<h1>{{.Title}}</h1>
<p id="error-code">{{.CodeLabel}}</p>
<p id="error-description">{{.Desc}}</p>
</main>
</body>
</html>
`))

var formPostTmpl = template.Must(template.New("form_post").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Redirecting…</title>
</head>
<body>
<form id="form_post" method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><button id="continue" type="submit">Continue</button></noscript>
</form>
<script src="{{.Script}}"></script>
</body>
</html>
`))

type formField struct{ Name, Value string }

type formPostData struct {
	Action, Script string
	Fields         []formField
}

type consentPage struct {
	Lang, Title, Provider, Brand, Color, ButtonText string
	App, Greeting, ItemsHeading                     string
	Items                                           []string
	TermsHeading                                    string
	Terms                                           []consentTerm
	Action, RequestID, ApproveLabel, DenyLabel      string
}

// errorPageData fills errorTmpl.
type errorPageData struct{ Lang, Title, Brand, Code, CodeLabel, Desc string }

// nickname is how a consent page greets the user.
func nickname(u User) string {
	if u.Nickname != "" {
		return u.Nickname
	}
	return u.Name
}

func (e *Emulator) renderConsent(w http.ResponseWriter, id string, req *authRequest, u User) {
	p := consentPage{Provider: string(e.kind), App: req.clientID, Action: e.p.consent, RequestID: id, ButtonText: "#fff"}
	e.d.consent(&p, req, u)
	e.consentTermsPage(&p, req)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	_ = consentTmpl.Execute(w, p)
}

func (e *Emulator) renderError(w http.ResponseWriter, a *authzError) {
	status := a.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	data := errorPageData{Code: a.code, Desc: a.desc, Brand: string(e.kind)}
	e.d.errorPage(&data, status, a)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = errorTmpl.Execute(w, data)
}

// ---- Approve / Deny ----

// Approve plays a user who clicks "agree" on the consent page, with its own
// http.Client that does not follow redirects: GET authURL, then submit the
// consent form. It returns the redirect target (the registered redirect_uri
// with code and state, or the provider's error redirect). If the authorize
// request itself is invalid (bad client_id / redirect_uri), it returns an
// *AuthorizeError describing the provider's error page.
//
// authURL may also be a URL that redirects (possibly several times) to this
// emulator's authorize endpoint, such as the broker's login URL; cookies set
// along the way are not kept.
//
// When the provider answers with response_mode=form_post (Apple with
// scopes), the URL is the form's action with the posted fields as its
// query: a shortcut for tests that read code and state. A browser POSTs
// them instead; ApproveForm returns the form itself.
func (e *Emulator) Approve(ctx context.Context, authURL string) (*url.URL, error) {
	u, fp, err := e.answerConsent(ctx, authURL, "approve", nil)
	if fp != nil {
		return fp.flat(), nil
	}
	return u, err
}

// ApproveTerms is Approve with the Kakao Sync terms of the consent page
// ticked as the user chooses: exactly tags (nil or empty: none). The
// emulator refuses, like Kakao's screen, a consent without every required
// term shown.
func (e *Emulator) ApproveTerms(ctx context.Context, authURL string, tags []string) (*url.URL, error) {
	if tags == nil {
		tags = []string{}
	}
	u, fp, err := e.answerConsent(ctx, authURL, "approve", tags)
	if fp != nil {
		return fp.flat(), nil
	}
	return u, err
}

// Deny plays a user who cancels on the consent page. It returns
// redirect_uri?error=access_denied&error_description=…&state=… (for a
// form_post answer, flattened like Approve's).
func (e *Emulator) Deny(ctx context.Context, authURL string) (*url.URL, error) {
	u, fp, err := e.answerConsent(ctx, authURL, "deny", nil)
	if fp != nil {
		return fp.flat(), nil
	}
	return u, err
}

// FormPost is a response_mode=form_post answer: the form the provider's
// page POSTs to the redirect URI.
type FormPost struct {
	Action *url.URL
	Values url.Values
}

func (fp *FormPost) flat() *url.URL {
	u := *fp.Action
	q := u.Query()
	for k, vs := range fp.Values {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return &u
}

// ApproveForm is Approve for a provider answering with
// response_mode=form_post: it returns the form to POST. An answer by
// redirect is an error.
func (e *Emulator) ApproveForm(ctx context.Context, authURL string) (*FormPost, error) {
	return e.consentForm(ctx, authURL, "approve")
}

// DenyForm is Deny for a provider answering with response_mode=form_post.
func (e *Emulator) DenyForm(ctx context.Context, authURL string) (*FormPost, error) {
	return e.consentForm(ctx, authURL, "deny")
}

func (e *Emulator) consentForm(ctx context.Context, authURL, action string) (*FormPost, error) {
	u, fp, err := e.answerConsent(ctx, authURL, action, nil)
	if err != nil {
		return nil, err
	}
	if fp == nil {
		return nil, fmt.Errorf("emulator: the provider answered with a redirect to %s, not a form_post", u.Redacted())
	}
	return fp, nil
}

var (
	reFormAction  = regexp.MustCompile(`<form id="consent" method="post" action="([^"]*)"`)
	reRequestID   = regexp.MustCompile(`name="request_id" value="([^"]*)"`)
	reErrCode     = regexp.MustCompile(`data-error="([^"]*)"`)
	reErrDesc     = regexp.MustCompile(`data-error-description="([^"]*)"`)
	reFormPost    = regexp.MustCompile(`<form id="form_post" method="post" action="([^"]*)"`)
	reHidden      = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	reServiceTerm = regexp.MustCompile(`name="service_terms" value="([^"]*)"`)
)

// answerConsent submits the consent page with action; terms nil ticks every
// term the page shows, otherwise exactly terms.
func (e *Emulator) answerConsent(ctx context.Context, authURL, action string, terms []string) (*url.URL, *FormPost, error) {
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	current, err := url.Parse(authURL)
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: bad authorize URL: %w", err)
	}
	for hops := 0; ; hops++ {
		resp, body, err := do(ctx, client, http.MethodGet, current.String(), nil)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				return nil, nil, fmt.Errorf("emulator: redirect without a Location from %s", current.Redacted())
			}
			if e.isOwnAuthorize(loc) && hops < 10 {
				current = loc // e.g. the broker's login URL pointing here
				continue
			}
			return loc, nil, nil // the provider's error redirect
		case resp.StatusCode == http.StatusOK:
			if fp := parseFormPost(body); fp != nil {
				return nil, fp, nil // an error answered as a form_post
			}
			m := reFormAction.FindSubmatch(body)
			id := reRequestID.FindSubmatch(body)
			if m == nil || id == nil {
				return nil, nil, fmt.Errorf("emulator: %s did not answer with a consent page", current.Redacted())
			}
			formURL, err := current.Parse(html.UnescapeString(string(m[1])))
			if err != nil {
				return nil, nil, fmt.Errorf("emulator: bad consent form action: %w", err)
			}
			form := url.Values{"request_id": {html.UnescapeString(string(id[1]))}, "action": {action}}
			if terms == nil {
				for _, m := range reServiceTerm.FindAllSubmatch(body, -1) {
					form.Add("service_terms", html.UnescapeString(string(m[1])))
				}
			}
			for _, t := range terms {
				form.Add("service_terms", t)
			}
			resp, body, err := do(ctx, client, http.MethodPost, formURL.String(), strings.NewReader(form.Encode()))
			if err != nil {
				return nil, nil, err
			}
			if resp.StatusCode == http.StatusOK {
				if fp := parseFormPost(body); fp != nil {
					return nil, fp, nil
				}
			}
			if resp.StatusCode < 300 || resp.StatusCode >= 400 {
				return nil, nil, pageError(resp.StatusCode, body)
			}
			loc, err := resp.Location()
			if err != nil {
				return nil, nil, fmt.Errorf("emulator: consent answer without a Location")
			}
			return loc, nil, nil
		default:
			return nil, nil, pageError(resp.StatusCode, body)
		}
	}
}

// parseFormPost reads a form_post page; nil when body is not one.
func parseFormPost(body []byte) *FormPost {
	m := reFormPost.FindSubmatch(body)
	if m == nil {
		return nil
	}
	action, err := url.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		return nil
	}
	fp := &FormPost{Action: action, Values: url.Values{}}
	for _, f := range reHidden.FindAllSubmatch(body, -1) {
		fp.Values.Add(html.UnescapeString(string(f[1])), html.UnescapeString(string(f[2])))
	}
	return fp
}

func (e *Emulator) isOwnAuthorize(u *url.URL) bool {
	base, _ := url.Parse(e.base)
	return u.Host == base.Host && (u.Path == e.p.authorize || (e.p.authorizeAlias != "" && u.Path == e.p.authorizeAlias))
}

func pageError(status int, body []byte) error {
	ae := &AuthorizeError{Status: status}
	if m := reErrCode.FindSubmatch(body); m != nil {
		ae.Code = html.UnescapeString(string(m[1]))
	}
	if m := reErrDesc.FindSubmatch(body); m != nil {
		ae.Description = html.UnescapeString(string(m[1]))
	}
	if ae.Code == "" {
		ae.Code = http.StatusText(status)
		ae.Description = strings.TrimSpace(string(body))
		if len(ae.Description) > 200 {
			ae.Description = ae.Description[:200]
		}
	}
	return ae
}

func do(ctx context.Context, client *http.Client, method, target string, body io.Reader) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: reading %s: %w", target, err)
	}
	return resp, b, nil
}
