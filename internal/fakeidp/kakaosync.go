package fakeidp

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Kakao Sync (카카오싱크): the app registers its own terms, each with a tag,
// and Kakao's consent screen asks for them. The authorize request's
// service_terms=tag,tag picks which (unknown tags show nothing; without the
// parameter, every registered term); only terms the user has not agreed to
// yet are shown, and the screen cannot be confirmed without the required
// ones. GET /v2/user/service_terms reports the agreements:
//
//	{"id":3012345678,"service_terms":[{"tag":"service","required":true,"agreed":true,"revocable":false,"agreed_at":"2026-12-01T09:00:00Z"}]}
//
// with result=app_service_terms every registered term is listed (agreed
// true or false), and tags=a,b narrows the list. A bad token is 401
// {"msg":"this access token does not exist","code":-401}; a bad admin key
// 401 as well; bad parameters 400 {"code":-2}.

// ServiceTerm is one Kakao Sync term registered for the app.
type ServiceTerm struct {
	Tag       string
	Required  bool
	Revocable bool
}

const kakaoServiceTerms = "/v2/user/service_terms"

// consentTerm is one term on the consent page.
type consentTerm struct {
	Tag, Label string
	Required   bool
}

// requestedTerms is the registered terms an authorize request asks for.
func (e *Emulator) requestedTerms(q url.Values) []ServiceTerm {
	if len(e.opts.ServiceTerms) == 0 {
		return nil
	}
	if !q.Has("service_terms") {
		return slices.Clone(e.opts.ServiceTerms)
	}
	var out []ServiceTerm
	for _, tag := range strings.Split(q.Get("service_terms"), ",") {
		for _, t := range e.opts.ServiceTerms {
			if t.Tag == strings.TrimSpace(tag) && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// termsToShowLocked is the requested terms u has not agreed to yet.
func (e *Emulator) termsToShowLocked(req *authRequest, u User) []ServiceTerm {
	var out []ServiceTerm
	for _, t := range req.terms {
		if _, ok := e.agreed[u.Subject][t.Tag]; !ok {
			out = append(out, t)
		}
	}
	return out
}

// consentTermsPage adds the terms to show to the consent page.
func (e *Emulator) consentTermsPage(p *consentPage, req *authRequest) {
	if len(req.shownTerms) == 0 {
		return
	}
	p.TermsHeading = e.text("Service terms", "서비스 약관")
	for _, t := range req.shownTerms {
		kind := e.text("[Optional] ", "[선택] ")
		if t.Required {
			kind = e.text("[Required] ", "[필수] ")
		}
		p.Terms = append(p.Terms, consentTerm{Tag: t.Tag, Label: kind + t.Tag, Required: t.Required})
	}
}

// consentTerms is the shown terms the consent form ticked; a required one
// left out is refused with an error page (Kakao's screen does not let the
// user go on without it).
func (e *Emulator) consentTerms(req *authRequest, ticked []string) ([]string, *authzError) {
	var out []string
	for _, t := range req.shownTerms {
		switch {
		case slices.Contains(ticked, t.Tag):
			out = append(out, t.Tag)
		case t.Required:
			return nil, &authzError{page: true, status: 400, code: "required_terms",
				desc: e.text("Agree to every required term to continue: "+t.Tag, "필수 약관에 동의해야 계속할 수 있습니다: "+t.Tag)}
		}
	}
	return out, nil
}

// recordTermsLocked stores agreements of subject at now.
func (e *Emulator) recordTermsLocked(subject string, tags []string, now time.Time) {
	if len(tags) == 0 {
		return
	}
	m := e.agreed[subject]
	if m == nil {
		m = map[string]time.Time{}
		e.agreed[subject] = m
	}
	for _, t := range tags {
		m[t] = now
	}
}

// SetAgreedTerms records that the user subject agreed to tags now, as an
// earlier login would have (a returning Kakao user, another service of the
// same app). No tags forgets the user's agreements.
func (e *Emulator) SetAgreedTerms(subject string, tags ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(tags) == 0 {
		delete(e.agreed, subject)
		return
	}
	e.recordTermsLocked(subject, tags, e.now())
}

// AgreedTerms returns the tags subject has agreed to, sorted.
func (e *Emulator) AgreedTerms(subject string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for t := range e.agreed[subject] {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// handleKakaoServiceTerms is GET /v2/user/service_terms, with the user's
// access token (Bearer) or the admin key (KakaoAK, target_id_type=user_id,
// target_id).
func (e *Emulator) handleKakaoServiceTerms(w http.ResponseWriter, r *http.Request) {
	if !methodIn(r, http.MethodGet) {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	f := e.currentFaults()
	if !e.sleep(r.Context(), f.TermsDelay) {
		return
	}
	if f.TermsStatus != 0 {
		e.writeFault(w, "service_terms", f.TermsStatus, f.TermsBody)
		return
	}
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	q := r.URL.Query()
	var subject string
	switch {
	case strings.EqualFold(scheme, "KakaoAK"):
		if e.opts.AdminKey == "" || subtle.ConstantTimeCompare([]byte(cred), []byte(e.opts.AdminKey)) != 1 {
			e.writeJSON(w, http.StatusUnauthorized, kakaoAPIError(-401, "wrong appKey type or the admin key does not exist"), false)
			return
		}
		if q.Get("target_id_type") != "user_id" || !isJSONInteger(q.Get("target_id")) {
			e.writeJSON(w, http.StatusBadRequest, kakaoAPIError(-2, "target_id_type must be user_id and target_id a user id"), false)
			return
		}
		subject = q.Get("target_id")
	case strings.EqualFold(scheme, "Bearer"):
		g, st := e.lookupAccess(cred)
		if st != tokenOK {
			e.d.userinfoAuthError(e, w, st)
			return
		}
		subject = g.user.Subject
	default:
		e.writeJSON(w, http.StatusUnauthorized, kakaoAPIError(-401, "this access token does not exist"), false)
		return
	}
	all := false
	switch q.Get("result") {
	case "", "agreed_service_terms":
	case "app_service_terms":
		all = true
	default:
		e.writeJSON(w, http.StatusBadRequest, kakaoAPIError(-2, "invalid result: "+q.Get("result")), false)
		return
	}
	var only []string
	if q.Has("tags") {
		only = strings.Split(q.Get("tags"), ",")
	}
	e.mu.Lock()
	agreed := e.agreed[subject]
	items := []map[string]any{}
	for _, t := range e.opts.ServiceTerms {
		at, ok := agreed[t.Tag]
		if (!ok && !all) || (only != nil && !slices.Contains(only, t.Tag)) {
			continue
		}
		item := map[string]any{"tag": t.Tag, "required": t.Required, "agreed": ok, "revocable": t.Revocable}
		if ok {
			item["agreed_at"] = at.UTC().Format(time.RFC3339)
		}
		items = append(items, item)
	}
	e.mu.Unlock()
	e.writeJSON(w, http.StatusOK, map[string]any{"id": json.Number(subject), "service_terms": items}, false)
}
