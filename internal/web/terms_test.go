package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Terms render as checkboxes named terms with the tag as value, labelled in
// the request's language; hostile tags and URLs (the broker's config
// refuses them, but the renderer must not trust that) are escaped.
func TestSignupTermsRender(t *testing.T) {
	r := newRenderer(t)
	terms := []SignupTerm{
		{Tag: "service", URL: "https://example.com/terms?a=1&b=2", Required: true, Checked: true},
		{Tag: "marketing", URL: "https://example.com/m"},
		{Tag: "newsletter_2", URL: "https://example.com/n"},
		{Tag: `x"><script>alert(1)</script>`, URL: "javascript:alert(1)"},
		{Tag: "q", URL: `https://example.com/"><img src=x onerror=alert(1)>`},
	}
	for lang, want := range map[string][]string{
		"ko": {"(필수)</span> 서비스 이용약관 동의", "(선택)</span> 마케팅 정보 수신 동의", "(선택)</span> newsletter_2", ">보기</a>", "모두 동의하고 가입하기", "전체 동의"},
		"en": {"(required)</span> Terms of Service", "(optional)</span> Receiving marketing messages", ">View</a>", "Agree to all and create account"},
	} {
		rec := httptest.NewRecorder()
		r.Signup(rec, request("/auth/signup", lang), http.StatusBadRequest, SignupPage{Action: "/auth/signup", CSRFToken: "tok", Fields: signupFields(""), Terms: terms, Error: "terms_required"})
		body := checkPage(t, rec, http.StatusBadRequest, lang)
		for _, w := range append(want,
			`<input id="term-service" name="terms" type="checkbox" value="service" checked data-required="true">`,
			`<input id="term-marketing" name="terms" type="checkbox" value="marketing">`,
			`href="https://example.com/terms?a=1&amp;b=2"`,
			`<fieldset id="terms" class="terms" aria-invalid="true" aria-describedby="message">`,
			`<button id="signup-agree-all" class="btn btn-secondary" type="submit" name="agree_all" value="1">`,
			`<script src="/static/terms.js" defer></script>`,
		) {
			if !strings.Contains(body, w) {
				t.Errorf("%s: lacks %q:\n%s", lang, w, body)
			}
		}
		for _, bad := range []string{"<script>alert", "javascript:", "<img", "onerror=alert(1)>"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: unescaped %q:\n%s", lang, bad, body)
			}
		}
	}
	// No terms: no fieldset, no button, no script.
	rec := httptest.NewRecorder()
	r.Signup(rec, request("/auth/signup", "en"), 0, SignupPage{Action: "/auth/signup", CSRFToken: "tok", Fields: signupFields("")})
	if body := rec.Body.String(); strings.Contains(body, "terms") || strings.Contains(body, "<script") {
		t.Errorf("terms without terms:\n%s", body)
	}
	if _, err := staticAssets(); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	http.StripPrefix("/static", Static()).ServeHTTP(rec, httptest.NewRequest("GET", "/static/terms.js", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "terms-all") {
		t.Errorf("/static/terms.js: %d", rec.Code)
	}
}
