package web

import (
	"bytes"
	"html"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	jsclient "github.com/socialbroker/broker/clients/js"
	"github.com/socialbroker/broker/templates"
)

func newRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func request(target, acceptLanguage string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	return req
}

const (
	acceptKO = "ko-KR,ko;q=0.9"
	acceptEN = "en-US"
)

// checkPage asserts the headers and skeleton every page shares.
func checkPage(t *testing.T, rec *httptest.ResponseRecorder, status int, lang string) string {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body:\n%s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	body := rec.Body.String()
	if !strings.Contains(body, `<html lang="`+lang+`">`) {
		t.Errorf("missing <html lang=%q>", lang)
	}
	for _, want := range []string{`<meta name="viewport"`, `<link rel="stylesheet" href="/static/style.css">`, "</html>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	return body
}

var providers = LoginPage{Providers: []ProviderButton{
	{Name: "kakao", Type: "kakao", DisplayName: "Kakao", Href: "/auth/login/kakao?return_to=%2Fdemo%2F&x=1"},
	{Name: "naver", Type: "naver", DisplayName: "Naver", Href: "/auth/login/naver"},
	{Name: "google", Type: "google", DisplayName: "Google", Href: "/auth/login/google"},
	{Name: "corp", Type: "oidc", DisplayName: "Acme SSO", Href: "/auth/login/corp"},
	{Name: "gitea", Type: "oauth2", Href: "/auth/login/gitea"},
}}

func TestLogin(t *testing.T) {
	r := newRenderer(t)
	cases := []struct {
		accept, lang string
		want         []string
		notWant      []string
	}{
		{acceptKO, "ko",
			[]string{"카카오 로그인", "네이버 로그인", "Google 계정으로 로그인", "Acme SSO(으)로 로그인", "gitea(으)로 로그인", "로그인</h1>", "비밀번호"},
			[]string{"Login with Kakao", "Sign in with Google"}},
		{acceptEN, "en",
			[]string{"Login with Kakao", "Log in with NAVER", "Sign in with Google", "Continue with Acme SSO", "Continue with gitea", "Sign in</h1>", "password"},
			[]string{"카카오 로그인", "Google 계정으로 로그인"}},
	}
	for _, c := range cases {
		t.Run(c.lang, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.Login(rec, request("/auth/login", c.accept), providers)
			body := checkPage(t, rec, http.StatusOK, c.lang)
			for _, p := range providers.Providers {
				tag := regexp.MustCompile(`<a class="btn btn-[a-z]+" id="login-` + p.Name + `" href="([^"]*)">`).FindStringSubmatch(body)
				if tag == nil {
					t.Errorf("no button for %s", p.Name)
					continue
				}
				if got := html.UnescapeString(tag[1]); got != p.Href {
					t.Errorf("%s href = %q, want %q", p.Name, got, p.Href)
				}
			}
			if !strings.Contains(body, `href="/auth/login/kakao?return_to=%2Fdemo%2F&amp;x=1"`) {
				t.Errorf("& in href not escaped as &amp;")
			}
			for _, cls := range []string{`btn-kakao" id="login-kakao"`, `btn-naver" id="login-naver"`, `btn-google" id="login-google"`, `btn-other" id="login-corp"`, `btn-other" id="login-gitea"`} {
				if !strings.Contains(body, cls) {
					t.Errorf("missing %s", cls)
				}
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(body, w) {
					t.Errorf("unexpected %q", w)
				}
			}
		})
	}
}

func TestLoginEscapesProviderFields(t *testing.T) {
	r := newRenderer(t)
	rec := httptest.NewRecorder()
	r.Login(rec, request("/auth/login", acceptEN), LoginPage{Providers: []ProviderButton{
		{Name: "evil", Type: "oidc", DisplayName: `<b onmouseover="x">Evil</b>`, Href: "javascript:alert(1)"},
	}})
	body := checkPage(t, rec, http.StatusOK, "en")
	if strings.Contains(body, "<b onmouseover") || strings.Contains(body, "javascript:") {
		t.Errorf("provider fields not escaped:\n%s", body)
	}
	if !strings.Contains(body, "Continue with &lt;b onmouseover=&#34;x&#34;&gt;Evil&lt;/b&gt;") {
		t.Errorf("escaped display name not shown")
	}
}

func TestLoginNoProviders(t *testing.T) {
	r := newRenderer(t)
	rec := httptest.NewRecorder()
	r.Login(rec, request("/auth/login", acceptEN), LoginPage{})
	body := checkPage(t, rec, http.StatusOK, "en")
	if !strings.Contains(body, `id="no-providers"`) || strings.Contains(body, `id="login-`) {
		t.Errorf("empty provider list not handled:\n%s", body)
	}
}

func TestLoginLanguageSwitcherKeepsQuery(t *testing.T) {
	r := newRenderer(t)
	rec := httptest.NewRecorder()
	r.Login(rec, request("/auth/login?return_to=%2Fdemo%2F&lang=ko", acceptEN), providers)
	body := checkPage(t, rec, http.StatusOK, "ko")
	if !strings.Contains(body, `href="?lang=en&amp;return_to=%2Fdemo%2F"`) {
		t.Errorf("language switcher link lost the query:\n%s", body)
	}
	if !strings.Contains(body, `hreflang="ko" lang="ko" aria-current="true"`) {
		t.Errorf("current language not marked")
	}
}

func TestLang(t *testing.T) {
	cases := []struct{ target, accept, want string }{
		{"/", "", "en"},
		{"/", acceptKO, "ko"},
		{"/", acceptEN, "en"},
		{"/", "en;q=0.1, ko;q=0.9", "ko"},
		{"/", "ko;q=0.2, en;q=0.8", "en"},
		{"/", "fr-FR, ko;q=0.5, en;q=0.4", "ko"},
		{"/", "fr-FR, de", "en"},
		{"/", "ko;q=0, en;q=0", "en"},
		{"/", "ko;q=0", "en"},
		{"/", "KO-kr", "ko"},
		{"/", "ko;q=abc, en;q=0.3", "en"},
		{"/", "ko;q=0.5, en;q=0.5", "ko"}, // tie: the first wins
		{"/", "*", "en"},
		{"/?lang=ko", acceptEN, "ko"},
		{"/?lang=en", acceptKO, "en"},
		{"/?lang=fr", acceptKO, "ko"},
		{"/?lang=", "ko", "ko"},
	}
	for _, c := range cases {
		if got := Lang(request(c.target, c.accept)); got != c.want {
			t.Errorf("Lang(%s, %q) = %s, want %s", c.target, c.accept, got, c.want)
		}
	}
}

func TestLoginQValues(t *testing.T) {
	r := newRenderer(t)
	rec := httptest.NewRecorder()
	r.Login(rec, request("/auth/login", "en;q=0.1, ko;q=0.9"), providers)
	body := checkPage(t, rec, http.StatusOK, "ko")
	if !strings.Contains(body, "카카오 로그인") {
		t.Errorf("q-values not respected")
	}
}

func signupFields(invalid string) []SignupField {
	f := []SignupField{
		{Name: "nickname", Value: "<script>alert(1)</script>", MaxLen: 20},
		{Name: "email", Value: "a@example.com", MaxLen: 254},
		{Name: "favorite_color", Value: `blue" onfocus="x`, MaxLen: 10},
	}
	for i := range f {
		f[i].Invalid = f[i].Name == invalid
	}
	return f
}

func TestSignup(t *testing.T) {
	r := newRenderer(t)
	for _, lang := range []string{"ko", "en"} {
		t.Run(lang, func(t *testing.T) {
			accept := map[string]string{"ko": acceptKO, "en": acceptEN}[lang]
			rec := httptest.NewRecorder()
			r.Signup(rec, request("/auth/signup", accept), 0, SignupPage{
				Action: "/auth/signup?a=1&b=2", CSRFToken: "tok-123", Fields: signupFields(""),
			})
			body := checkPage(t, rec, http.StatusOK, lang)
			for _, want := range []string{
				`<form class="form" method="post" action="/auth/signup?a=1&amp;b=2"`,
				`<input type="hidden" name="csrf_token" value="tok-123">`,
				`name="nickname" type="text" value="&lt;script&gt;alert(1)&lt;/script&gt;" maxlength="20" required autocomplete="nickname">`,
				`name="email" type="email" value="a@example.com" maxlength="254" required`,
				`name="favorite_color" type="text" value="blue&#34; onfocus=&#34;x" maxlength="10" required`,
				`<label for="field-favorite_color">favorite_color</label>`,
				`<button id="signup-submit" class="btn btn-primary" type="submit">`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("missing %s", want)
				}
			}
			labels := map[string][]string{"ko": {">닉네임</label>", ">이메일</label>", "가입하기"}, "en": {">Nickname</label>", ">Email</label>", "Create account"}}[lang]
			for _, want := range labels {
				if !strings.Contains(body, want) {
					t.Errorf("missing %s", want)
				}
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, `id="message"`) || strings.Contains(body, "aria-invalid") {
				t.Errorf("unexpected raw script, message or invalid marker:\n%s", body)
			}
		})
	}
}

func TestSignupErrors(t *testing.T) {
	r := newRenderer(t)
	cases := []struct {
		code, invalid, accept, want string
	}{
		{"field_missing", "nickname", acceptKO, "닉네임 항목을 입력해 주세요."},
		{"field_missing", "nickname", acceptEN, "Nickname is required."},
		{"field_blank", "email", acceptKO, "이메일 항목은 공백만으로"},
		{"field_blank", "email", acceptEN, "Email can&#39;t be only spaces."},
		{"field_too_long", "nickname", acceptKO, "닉네임 항목은 20자 이하로 입력해 주세요."},
		{"field_too_long", "nickname", acceptEN, "Nickname must be 20 characters or fewer."},
		{"field_invalid", "favorite_color", acceptEN, "favorite_color contains characters that can&#39;t be used."},
		{"field_invalid", "favorite_color", acceptKO, "favorite_color 항목에 사용할 수 없는 문자가 있어요."},
		{"csrf", "", acceptKO, "보안을 위해"},
		{"csrf", "", acceptEN, "For your security, this form expired."},
		{"field_invalid", "", acceptEN, "Please check what you entered and try again."},
		{"something_else", "", acceptKO, "입력한 내용을 확인한 뒤 다시 시도해 주세요."},
	}
	for _, c := range cases {
		t.Run(c.code+"/"+c.invalid+"/"+c.accept, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.Signup(rec, request("/auth/signup", c.accept), http.StatusUnprocessableEntity, SignupPage{
				Action: "/auth/signup", CSRFToken: "tok", Fields: signupFields(c.invalid), Error: c.code,
			})
			body := checkPage(t, rec, http.StatusUnprocessableEntity, Lang(request("/", c.accept)))
			m := regexp.MustCompile(`<p id="message" class="error" role="alert">([^<]*)</p>`).FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("no #message:\n%s", body)
			}
			if !strings.Contains(m[1], c.want) {
				t.Errorf("message = %q, want it to contain %q", m[1], c.want)
			}
			invalid := regexp.MustCompile(`name="([a-z_]+)"[^>]*aria-invalid="true"`).FindAllStringSubmatch(body, -1)
			switch {
			case c.invalid == "" && len(invalid) != 0:
				t.Errorf("no field is invalid, but %v is marked", invalid)
			case c.invalid != "" && (len(invalid) != 1 || invalid[0][1] != c.invalid):
				t.Errorf("marked invalid: %v, want only %s", invalid, c.invalid)
			}
			// values are re-filled after an error, escaped
			if !strings.Contains(body, `value="&lt;script&gt;alert(1)&lt;/script&gt;"`) || !strings.Contains(body, `value="a@example.com"`) {
				t.Errorf("values not re-filled")
			}
		})
	}
}

func TestSignupFirstInvalidFieldNamesMessage(t *testing.T) {
	r := newRenderer(t)
	fields := signupFields("")
	fields[1].Invalid, fields[2].Invalid = true, true
	rec := httptest.NewRecorder()
	r.Signup(rec, request("/auth/signup", acceptEN), http.StatusBadRequest, SignupPage{Action: "/auth/signup", Fields: fields, Error: "field_missing"})
	body := checkPage(t, rec, http.StatusBadRequest, "en")
	if !strings.Contains(body, "Email is required.") {
		t.Errorf("message should name the first invalid field:\n%s", body)
	}
	if strings.Count(body, " autofocus") != 1 || !regexp.MustCompile(`name="email"[^>]*autofocus`).MatchString(body) {
		t.Errorf("the first invalid field should have autofocus")
	}
}

func TestError(t *testing.T) {
	r := newRenderer(t)
	for code, texts := range errorCatalogue {
		for _, lang := range []string{"ko", "en"} {
			accept := map[string]string{"ko": acceptKO, "en": acceptEN}[lang]
			rec := httptest.NewRecorder()
			r.Error(rec, request("/auth/callback/kakao", accept), http.StatusBadRequest, code)
			body := checkPage(t, rec, http.StatusBadRequest, lang)
			if !strings.Contains(body, `<code id="error-code">`+code+`</code>`) {
				t.Errorf("%s/%s: code not shown", code, lang)
			}
			msg := html.EscapeString(texts[lang].Message)
			if !strings.Contains(body, msg) || !strings.Contains(body, html.EscapeString(texts[lang].Title)) {
				t.Errorf("%s/%s: message or title not shown", code, lang)
			}
			if !strings.Contains(body, `<a id="back-to-login" class="btn btn-primary" href="/auth/login">`) {
				t.Errorf("%s/%s: no link back to the login page", code, lang)
			}
		}
	}
}

func TestErrorLanguages(t *testing.T) {
	r := newRenderer(t)
	rec := httptest.NewRecorder()
	r.Error(rec, request("/x", acceptKO), http.StatusBadRequest, "invalid_state")
	body := checkPage(t, rec, http.StatusBadRequest, "ko")
	if !strings.Contains(body, "로그인 시간이 만료되었어요") || !strings.Contains(body, "로그인 화면으로 돌아가기") {
		t.Errorf("Korean error page wording missing")
	}
	rec = httptest.NewRecorder()
	r.Error(rec, request("/x?lang=en", acceptKO), http.StatusBadRequest, "identity_conflict")
	body = checkPage(t, rec, http.StatusBadRequest, "en")
	if !strings.Contains(body, "already linked to another user") || !strings.Contains(body, `href="/auth/login?lang=en"`) {
		t.Errorf("English error page wording or lang-preserving link missing:\n%s", body)
	}
}

func TestErrorUnknownCodeFallsBack(t *testing.T) {
	r := newRenderer(t)
	for _, code := range []string{"", "no_such_code", `<script>alert("pwned")</script>`, "server_error\" onload=\"x"} {
		rec := httptest.NewRecorder()
		r.Error(rec, request("/x", acceptEN), 0, code)
		body := checkPage(t, rec, http.StatusInternalServerError, "en")
		if !strings.Contains(body, `<code id="error-code">server_error</code>`) {
			t.Errorf("%q: no fallback to server_error", code)
		}
		if !strings.Contains(body, "Something went wrong on our side.") {
			t.Errorf("%q: fallback message missing", code)
		}
		if code != "" && (strings.Contains(body, code) || strings.Contains(body, html.EscapeString(code)) || strings.Contains(body, "pwned") || strings.Contains(body, "no_such_code")) {
			t.Errorf("%q: raw input echoed", code)
		}
	}
}

func TestCatalogues(t *testing.T) {
	required := []string{"invalid_request", "invalid_state", "access_denied", "invalid_grant", "invalid_id_token",
		"invalid_response", "provider_error", "provider_timeout", "return_to_not_allowed", "unknown_provider",
		"signup_expired", "identity_conflict", "terms_required", "user_disabled", "temporarily_unavailable", "rate_limited", "not_found", "method_not_allowed", "server_error",
		"invalid_client", "invalid_redirect_uri"}
	for _, code := range required {
		texts, ok := errorCatalogue[code]
		if !ok {
			t.Errorf("catalogue lacks %s", code)
			continue
		}
		for _, lang := range []string{"ko", "en"} {
			tx := texts[lang]
			if tx.Title == "" || len([]rune(tx.Message)) < 20 || !strings.HasSuffix(tx.Message, ".") {
				t.Errorf("%s/%s: title or message missing or not a sentence: %+v", code, lang, tx)
			}
		}
	}
	if len(errorCatalogue) != len(required) {
		t.Errorf("catalogue has %d codes, want %d", len(errorCatalogue), len(required))
	}
	for k := range ui["en"] {
		if ui["ko"][k] == "" {
			t.Errorf("ko lacks UI string %s", k)
		}
	}
	for k := range ui["ko"] {
		if ui["en"][k] == "" {
			t.Errorf("en lacks UI string %s", k)
		}
	}
}

// TestNoInlineStyleOrScript scans every embedded file: the broker's CSP
// (default-src 'self') blocks inline styles and inline scripts.
func TestNoInlineStyleOrScript(t *testing.T) {
	styleAttr := regexp.MustCompile(`(?i)\sstyle\s*=`)
	styleTag := regexp.MustCompile(`(?i)<style[\s>]`)
	scriptTag := regexp.MustCompile(`(?i)<script\b[^>]*>`)
	handlerAttr := regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	scanned := 0
	err := fs.WalkDir(templates.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".html") {
			return err
		}
		scanned++
		b, err := fs.ReadFile(templates.FS, p)
		if err != nil {
			return err
		}
		s := string(b)
		if styleAttr.MatchString(s) || styleTag.MatchString(s) {
			t.Errorf("%s: inline style", p)
		}
		if handlerAttr.MatchString(s) {
			t.Errorf("%s: inline event handler", p)
		}
		for _, tag := range scriptTag.FindAllString(s, -1) {
			if !regexp.MustCompile(`(?i)\ssrc\s*=`).MatchString(tag) {
				t.Errorf("%s: inline <script>: %s", p, tag)
			}
		}
		for _, m := range regexp.MustCompile(`(?is)<script\b[^>]*>(.*?)</script>`).FindAllStringSubmatch(s, -1) {
			if strings.TrimSpace(m[1]) != "" {
				t.Errorf("%s: <script> with a body", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 4 {
		t.Errorf("scanned %d html files, want login, signup, error and demo", scanned)
	}
}

// TestRenderedPagesHaveNoInlineStyle checks the output too (a template could
// build an attribute the source scan misses).
func TestRenderedPagesHaveNoInlineStyle(t *testing.T) {
	r := newRenderer(t)
	pages := []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, req *http.Request) { r.Login(w, req, providers) },
		func(w http.ResponseWriter, req *http.Request) {
			r.Signup(w, req, 400, SignupPage{Action: "/auth/signup", Fields: signupFields("email"), Error: "field_invalid"})
		},
		func(w http.ResponseWriter, req *http.Request) { r.Error(w, req, 400, "access_denied") },
	}
	for i, page := range pages {
		rec := httptest.NewRecorder()
		page(rec, request("/", acceptKO))
		body := rec.Body.String()
		if regexp.MustCompile(`(?i)\sstyle\s*=|<style|<script`).MatchString(body) {
			t.Errorf("page %d has inline style or script", i)
		}
	}
}

func TestRenderFailureIsClean500(t *testing.T) {
	r := newRenderer(t)
	rec := httptest.NewRecorder()
	r.render(rec, request("/", acceptEN), http.StatusOK, pageLogin, struct{}{}) // wrong data: execution fails
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "<html") || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("half a page written: %q", rec.Body)
	}
}

func TestStatic(t *testing.T) {
	h := http.StripPrefix("/static", Static())
	for _, c := range []struct{ path, ctype, contains string }{
		{"/static/style.css", "text/css; charset=utf-8", ".btn-kakao"},
		{"/static/demo.js", "text/javascript; charset=utf-8", "crypto.subtle.importKey"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != c.ctype || !strings.Contains(rec.Body.String(), c.contains) {
			t.Fatalf("%s: %d %q", c.path, rec.Code, rec.Header().Get("Content-Type"))
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control = %q", c.path, cc)
		}
		etag := rec.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", c.path)
		}
		req := httptest.NewRequest(http.MethodGet, c.path, nil)
		req.Header.Set("If-None-Match", etag)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified {
			t.Errorf("%s: revalidation = %d, want 304", c.path, rec.Code)
		}
	}
	for _, p := range []string{"/static/", "/static/nope.css", "/static/../templates.go", "/static/../login.html"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/static/style.css", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", rec.Code)
	}
}

func TestDemo(t *testing.T) {
	rec := httptest.NewRecorder()
	Demo().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/demo/", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{`<script type="module" src="/static/demo.js"></script>`, `id="status"`, `id="claims"`, `id="profile"`,
		`id="logout"`, `id="refresh"`, `<a id="login-link" class="btn btn-primary" href="/auth/login?return_to=/demo/">`} {
		if !strings.Contains(body, want) {
			t.Errorf("demo lacks %s", want)
		}
	}
	if rec.Header().Get("Cache-Control") != "no-cache" || rec.Header().Get("ETag") == "" {
		t.Errorf("demo caching headers: %v", rec.Header())
	}
}

// /static/broker-client.js is the JavaScript client the npm package ships,
// as a module script (the demo imports it).
func TestStaticServesTheJSClient(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r.Static().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/broker-client.js", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") || rec.Header().Get("ETag") == "" {
		t.Fatalf("broker-client.js: %d %q etag %q", rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("ETag"))
	}
	if !bytes.Equal(rec.Body.Bytes(), jsclient.Source) || !bytes.Contains(jsclient.Source, []byte("export function createClient")) {
		t.Fatal("broker-client.js is not clients/js/index.js")
	}
}
