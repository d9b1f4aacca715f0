package broker

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/socialbroker/broker/providers"
)

// A provider answering with response_mode=form_post (Apple) calls back with
// a cross-site POST. The browser does not send the SameSite=Lax state
// cookie with it, and the state cookie stays Lax. So the POST only seals
// what was posted into a short-lived cookie of its own (a cookie set by the
// answer to a top-level navigation is kept, whatever its SameSite) and
// answers with a page that navigates to GET /auth/callback/{provider}?form_post=1.
// That same-site navigation carries both cookies; the callback opens the
// sealed values and goes on as for a query callback. Neither the code nor
// anything else posted ever appears in a URL, a Location header or a log.

// formPostTTL is how long the posted values wait for the navigation.
const formPostTTL = 60 * time.Second

// formPostParam marks the callback that continues a form_post.
const formPostParam = "form_post"

// postedCallback is sealed into the form_post cookie.
type postedCallback struct {
	Provider string            `json:"p"`
	State    string            `json:"s"`
	Code     string            `json:"c,omitempty"`
	Error    string            `json:"x,omitempty"`
	Posted   map[string]string `json:"v,omitempty"` // what the provider kept (FormPostReader)
	Expires  int64             `json:"e"`
}

// formPostCookie is where posted values wait: __Host- under https (set only
// by this host), else sent to the callback path only.
func (s *Server) formPostCookie() flowCookie {
	if s.stateCookie.path == "/" {
		return flowCookie{"__Host-broker_formpost", "/"}
	}
	return flowCookie{"broker_formpost", callbackPath}
}

// formPostPage navigates, without script (the CSP allows none inline), to
// the callback that continues the login; the link is for browsers that do
// not follow meta refresh.
var formPostPage = template.Must(template.New("formpost").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="0;url={{.}}">
<title>Signing you in…</title>
</head>
<body>
<p><a id="continue" href="{{.}}">Continue signing in</a></p>
</body>
</html>
`))

// formPostCallback is POST /auth/callback/{provider}: a form_post answer.
func (s *Server) formPostCallback(w http.ResponseWriter, r *http.Request) error {
	if !s.limit(s.limits.callback, r, w) {
		return &pageError{Status: http.StatusTooManyRequests, Code: "rate_limited"}
	}
	w.Header().Set("Cache-Control", "no-store")
	name := r.PathValue("provider")
	p, ok := s.providers.Get(name)
	if !ok {
		return &pageError{Status: http.StatusNotFound, Code: "unknown_provider"}
	}
	fp, ok := p.(providers.FormPostReader)
	if !ok || !fp.FormPost() {
		// As for any method a route does not serve: not logged as a failure.
		w.Header().Set("Allow", "GET, HEAD")
		s.pages.Error(w, r, http.StatusMethodNotAllowed, string(codeMethodNotAllowed))
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errors.New("form_post body unparseable or too large")}
	}
	f := r.PostForm
	state, okState := queryParam(f, "state")
	code, okCode := queryParam(f, "code")
	authErr, okErr := queryParam(f, "error")
	switch {
	case !okState || !okCode || !okErr:
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errDuplicateParam}
	case state == "" || len(state) > 512:
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_state", Cause: errors.New("form_post without a state")}
	case code == "" && authErr == "":
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errors.New("form_post without a code or an error")}
	case len(code) > 1024:
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errors.New("form_post code over 1024 bytes")}
	}
	pc := postedCallback{Provider: name, State: state, Code: code, Error: logSafe(authErr, 64), Expires: s.now().Add(formPostTTL).Unix()}
	if code != "" {
		posted, err := fp.ReadFormPost(f)
		if err != nil {
			return &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: err}
		}
		pc.Posted = posted
	}
	c := s.formPostCookie()
	enc, err := s.cookies.Encode(c.name, pc)
	if err != nil {
		return &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errors.New("form_post values too large to keep")}
	}
	http.SetCookie(w, &http.Cookie{
		Name: c.name, Value: enc, Path: c.path, MaxAge: int(formPostTTL / time.Second),
		HttpOnly: true, Secure: s.cfg.Cookies.Secure, SameSite: http.SameSiteLaxMode,
	})
	next := callbackPath + url.PathEscape(name) + "?" + formPostParam + "=1"
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	return formPostPage.Execute(w, next)
}

// callbackParams returns the callback's parameters: the query, or for the
// continuation of a form_post the values sealed by formPostCallback (the
// cookie is cleared: it is read once). posted is what the provider kept
// from the form.
func (s *Server) callbackParams(w http.ResponseWriter, r *http.Request) (q url.Values, posted map[string]string, err error) {
	q = r.URL.Query()
	if _, ok := q[formPostParam]; !ok {
		return q, nil, nil
	}
	c := s.formPostCookie()
	var pc postedCallback
	err = s.readFlowCookie(r, c, &pc, func() int64 { return pc.Expires })
	s.clearFlowCookie(w, c)
	if err != nil || pc.Provider != r.PathValue("provider") {
		return nil, nil, &pageError{Status: http.StatusBadRequest, Code: "invalid_state", Cause: errors.New("form_post values missing, forged, expired or for another provider")}
	}
	if len(q) != 1 || q.Get(formPostParam) != "1" {
		return nil, nil, &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: errors.New("form_post continuation with other parameters")}
	}
	q = url.Values{"state": {pc.State}}
	if pc.Code != "" {
		q.Set("code", pc.Code)
	}
	if pc.Error != "" {
		q.Set("error", pc.Error)
	}
	return q, pc.Posted, nil
}
