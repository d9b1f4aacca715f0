package broker_test

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/fakeidp"
)

const termsYAML = `[{tag: service, required: true, url: "https://example.com/terms?v=2&lang=ko"}, {tag: privacy, required: true, url: https://example.com/privacy}, {tag: marketing, required: false, url: https://example.com/marketing}]`

var termBoxRE = regexp.MustCompile(`name="terms" type="checkbox" value="([a-z0-9_]+)"`)

// formTags is the tags of the signup form's checkboxes.
func formTags(body []byte) []string {
	var out []string
	for _, m := range termBoxRE.FindAllSubmatch(body, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

func csrfOf(t *testing.T, r response) string {
	t.Helper()
	m := csrfRE.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no signup form (%d): %s", r.StatusCode, r.body)
	}
	return string(m[1])
}

// termsOf is /auth/me's terms as "tag/source" strings, sorted.
func termsOf(t *testing.T, m map[string]any) []string {
	t.Helper()
	raw, ok := m["terms"].([]any)
	if !ok {
		t.Fatalf("/auth/me without a terms list: %v", m)
	}
	var out []string
	for _, it := range raw {
		it := it.(map[string]any)
		if _, err := time.Parse(time.RFC3339, it["agreed_at"].(string)); err != nil {
			t.Errorf("agreed_at %v", it["agreed_at"])
		}
		out = append(out, it["tag"].(string)+"/"+it["source"].(string))
	}
	slices.Sort(out)
	return out
}

func queryString(t *testing.T, env *brokertest.Env, q string, args ...any) string {
	t.Helper()
	var s string
	if err := env.Store.Pool().QueryRow(context.Background(), q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

func TestSignupTermsForm(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"google", "naver"}, Terms: termsYAML})
	c := env.Client()
	ko := map[string]string{"Accept-Language": "ko-KR,ko;q=0.9"}
	r := do(t, c, "GET", approve(t, env, "google", startLogin(t, env, c, "google", "")), nil, ko)
	wantStatus(t, r, 200)
	body := string(r.body)
	if got := strings.Join(formTags(r.body), ","); got != "service,privacy,marketing" {
		t.Fatalf("form terms = %s", got)
	}
	for _, want := range []string{
		`href="https://example.com/terms?v=2&amp;lang=ko"`, "(필수)</span> 서비스 이용약관 동의", "(선택)</span> 마케팅 정보 수신 동의",
		`name="agree_all"`, `<script src="/static/terms.js" defer></script>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("form lacks %q:\n%s", want, body)
		}
	}
	csrf := csrfOf(t, r)

	// Required terms missing: the form again, 400, nothing created.
	for name, form := range map[string]url.Values{
		"none":         {"csrf_token": {csrf}, "nickname": {"n"}},
		"privacy left": {"csrf_token": {csrf}, "nickname": {"n"}, "terms": {"service", "marketing"}},
		"forged only":  {"csrf_token": {csrf}, "nickname": {"n"}, "terms": {"admin", "service,privacy", "PRIVACY"}},
	} {
		r := do(t, c, "POST", env.URL+"/auth/signup", form, ko)
		wantStatus(t, r, 400)
		if !strings.Contains(string(r.body), "필수 약관에 모두 동의해야 가입할 수 있어요.") || !strings.Contains(string(r.body), `aria-invalid="true"`) {
			t.Errorf("%s: no message:\n%s", name, r.body)
		}
		if name == "privacy left" && (!strings.Contains(string(r.body), `value="service" checked`) || strings.Contains(string(r.body), `value="privacy" checked`)) {
			t.Errorf("%s: ticks not kept:\n%s", name, r.body)
		}
	}
	if n := countRows(t, env, "users"); n != 0 {
		t.Fatalf("%d users after refused forms", n)
	}
	// English wording.
	r = do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {csrf}, "nickname": {"n"}}, map[string]string{"Accept-Language": "en"})
	if !strings.Contains(string(r.body), "Please agree to every required term") || !strings.Contains(string(r.body), "(required)</span> Terms of Service") {
		t.Errorf("english form:\n%s", r.body)
	}

	// The required ones, a forged tag and a repeated one: stored once, the forged never.
	r = do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {csrf}, "nickname": {"n"},
		"terms": {"service", "privacy", "admin", "service", "<script>"}}, nil)
	wantStatus(t, r, 303)
	m := me(t, env, c)
	if got := strings.Join(termsOf(t, m), " "); got != "privacy/form service/form" {
		t.Errorf("/auth/me terms = %s", got)
	}
	userID := m["sub"].(string)
	var data map[string]any
	if err := json.Unmarshal([]byte(queryString(t, env, `SELECT data::text FROM events WHERE type = 'user.created' AND data->>'user_id' = $1`, userID)), &data); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(data["terms"]); string(got) != `["privacy","service"]` {
		t.Errorf("user.created terms = %s", got)
	}
	if got := queryString(t, env, `SELECT detail FROM audit_log WHERE type = 'terms_agreed' AND user_id = $1`, userID); got != "form: privacy,service" {
		t.Errorf("audit detail = %q", got)
	}
	if n := countRows(t, env, "terms_agreements"); n != 2 {
		t.Errorf("%d agreements stored", n)
	}

	// A returning user is not asked again.
	c2 := env.Client()
	wantStatus(t, do(t, c2, "GET", approve(t, env, "google", startLogin(t, env, c2, "google", "")), nil, nil), 303)

	// "Agree to all" without JavaScript: the submit button named agree_all.
	c3 := env.Client()
	r = do(t, c3, "GET", approve(t, env, "naver", startLogin(t, env, c3, "naver", "")), nil, nil)
	r = do(t, c3, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {csrfOf(t, r)}, "nickname": {"m"}, "agree_all": {"1"}}, nil)
	wantStatus(t, r, 303)
	if got := strings.Join(termsOf(t, me(t, env, c3)), " "); got != "marketing/form privacy/form service/form" {
		t.Errorf("agree_all terms = %s", got)
	}
}

// Without signup.terms nothing changes: no checkboxes, "terms" is [] in
// /auth/me and in user.created.
func TestSignupWithoutTerms(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"google"}})
	c := env.Client()
	r := do(t, c, "GET", approve(t, env, "google", startLogin(t, env, c, "google", "")), nil, nil)
	if strings.Contains(string(r.body), `name="terms"`) || strings.Contains(string(r.body), "terms.js") {
		t.Errorf("terms on a form without signup.terms:\n%s", r.body)
	}
	r = do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {csrfOf(t, r)}, "nickname": {"n"}, "terms": {"service"}}, nil)
	wantStatus(t, r, 303)
	m := me(t, env, c)
	if raw, _ := json.Marshal(m["terms"]); string(raw) != "[]" {
		t.Errorf("/auth/me terms = %s", raw)
	}
	if got := queryString(t, env, `SELECT data->>'terms' FROM events WHERE type = 'user.created'`); got != "[]" {
		t.Errorf("user.created terms = %s", got)
	}
}

var kakaoSync = []fakeidp.ServiceTerm{{Tag: "service", Required: true}, {Tag: "privacy", Required: true}, {Tag: "marketing"}}

const syncYAML = `[{tag: service, required: true, url: https://example.com/terms}, {tag: privacy, required: true, url: https://example.com/privacy}, {tag: marketing, url: https://example.com/marketing}, {tag: age, required: true, url: https://example.com/age}]`

const syncNoAgeYAML = `[{tag: service, required: true, url: https://example.com/terms}, {tag: privacy, required: true, url: https://example.com/privacy}, {tag: marketing, url: https://example.com/marketing}]`

// consentTerms plays the user on Kakao's screen ticking exactly tags.
func consentTerms(t *testing.T, env *brokertest.Env, authURL string, tags ...string) string {
	t.Helper()
	cb, err := env.Emulators["kakao"].ApproveTerms(context.Background(), authURL, tags)
	if err != nil {
		t.Fatalf("kakao consent: %v", err)
	}
	return cb.String()
}

func TestKakaoSyncTermsOnTheForm(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Terms: syncYAML, KakaoSync: kakaoSync})
	em := env.Emulators["kakao"]
	c := env.Client()
	authURL := startLogin(t, env, c, "kakao", "")
	if u, _ := url.Parse(authURL); u.Query().Get("service_terms") != "service,privacy,marketing" {
		t.Fatalf("authorize without service_terms: %s", authURL)
	}
	// Kakao's screen: the required ones, marketing declined.
	r := do(t, c, "GET", consentTerms(t, env, authURL, "service", "privacy"), nil, nil)
	wantStatus(t, r, 200)
	// The form asks only what Kakao did not: age (marketing was declined there).
	if got := strings.Join(formTags(r.body), ","); got != "age" {
		t.Fatalf("form terms = %q:\n%s", got, r.body)
	}
	if n := em.CallCount("/v2/user/service_terms"); n != 1 {
		t.Errorf("service terms API called %d times", n)
	}
	csrf := csrfOf(t, r)
	// Forging the Kakao tags on the form changes nothing; age is still missing.
	r = do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {csrf}, "nickname": {"n"}, "terms": {"marketing"}}, nil)
	wantStatus(t, r, 400)
	r = do(t, c, "POST", env.URL+"/auth/signup", url.Values{"csrf_token": {csrf}, "nickname": {"n"}, "terms": {"age", "marketing"}}, nil)
	wantStatus(t, r, 303)
	m := me(t, env, c)
	if got := strings.Join(termsOf(t, m), " "); got != "age/form privacy/kakao service/kakao" {
		t.Errorf("/auth/me terms = %s", got)
	}
	if got := queryString(t, env, `SELECT string_agg(detail, ' | ' ORDER BY detail) FROM audit_log WHERE type = 'terms_agreed'`); got != "form: age | kakao: privacy,service" {
		t.Errorf("audit = %q", got)
	}
	var call fakeidp.Call
	for _, cl := range em.Calls() {
		if cl.Path == "/v2/user/service_terms" {
			call = cl
		}
	}
	if !strings.HasPrefix(call.Authorization, "Bearer ") || call.Method != "GET" {
		t.Errorf("service terms call %+v", call)
	}

	// Returning: no form, no terms API call.
	c2 := env.Client()
	wantStatus(t, do(t, c2, "GET", approve(t, env, "kakao", startLogin(t, env, c2, "kakao", "")), nil, nil), 303)
	if n := em.CallCount("/v2/user/service_terms"); n != 1 {
		t.Errorf("service terms API called %d times after a returning login", n)
	}
}

func TestKakaoSyncTermsAuto(t *testing.T) {
	t.Parallel()
	// Kakao's console has privacy as optional; the service requires it.
	sync := []fakeidp.ServiceTerm{{Tag: "service", Required: true}, {Tag: "privacy"}}
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "google"}, Signup: "auto", KakaoSync: sync,
		Terms: `[{tag: service, required: true, url: https://example.com/t}, {tag: privacy, required: true, url: https://example.com/p}]`})
	c := env.Client()
	r := do(t, c, "GET", consentTerms(t, env, startLogin(t, env, c, "kakao", ""), "service"), nil, map[string]string{"Accept-Language": "ko"})
	wantStatus(t, r, 403)
	if !strings.Contains(string(r.body), ">terms_required<") || !strings.Contains(string(r.body), "필수 약관 동의가 필요해요") {
		t.Errorf("page:\n%s", r.body)
	}
	if n := countRows(t, env, "users"); n != 0 {
		t.Fatalf("%d users created without privacy", n)
	}
	if got := queryString(t, env, `SELECT detail FROM audit_log WHERE type = 'login_failed'`); got != "terms_required" {
		t.Errorf("login_failed detail %q", got)
	}
	// Agreed at Kakao the next time: only privacy is still shown there.
	r = do(t, c, "GET", consentTerms(t, env, startLogin(t, env, c, "kakao", ""), "privacy"), nil, nil)
	wantStatus(t, r, 303)
	if got := strings.Join(termsOf(t, me(t, env, c)), " "); got != "privacy/kakao service/kakao" {
		t.Errorf("/auth/me terms = %s", got)
	}

	// A provider that collects no terms cannot sign anyone up automatically.
	c2 := env.Client()
	wantStatus(t, do(t, c2, "GET", approve(t, env, "google", startLogin(t, env, c2, "google", "")), nil, nil), 403)
	// Nor can the token exchange: an id_token carries no agreement.
	r = exchange(t, env, "kakao", env.Emulators["kakao"].MintIDToken(map[string]any{"sub": "4242"}))
	wantStatus(t, r, 403)
	if r.json(t).Error != "terms_required" {
		t.Errorf("exchange: %s", r.body)
	}
	if n := countRows(t, env, "users"); n != 1 {
		t.Errorf("%d users", n)
	}
}

// A failing terms API never creates a user without its agreements: under
// auto the login fails with the provider's error; under form the form asks
// for every term.
func TestKakaoSyncTermsAPIFailure(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		faults fakeidp.Faults
		status int
		code   string
	}{
		{"5xx", fakeidp.Faults{TermsStatus: 500}, 502, "provider_error"},
		{"401", fakeidp.Faults{TermsStatus: 401}, 502, "invalid_response"},
		{"html", fakeidp.Faults{TermsStatus: 200, TermsBody: "<html>maintenance</html>"}, 502, "provider_error"},
		{"other user", fakeidp.Faults{TermsStatus: 200, TermsBody: `{"id":1,"service_terms":[{"tag":"service","required":true,"agreed":true,"revocable":false}]}`}, 502, "invalid_response"},
		{"timeout", fakeidp.Faults{TermsDelay: 5 * time.Second}, 504, "provider_timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			auto := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto", Terms: syncNoAgeYAML, KakaoSync: kakaoSync})
			auto.Emulators["kakao"].SetFaults(c.faults)
			cl := auto.Client()
			r := do(t, cl, "GET", approve(t, auto, "kakao", startLogin(t, auto, cl, "kakao", "")), nil, nil)
			wantStatus(t, r, c.status)
			if !strings.Contains(string(r.body), ">"+c.code+"<") {
				t.Errorf("auto: want %s:\n%s", c.code, r.body)
			}
			if n := countRows(t, auto, "users"); n != 0 {
				t.Errorf("auto: %d users", n)
			}
			if r.cookie("refresh_token") != nil {
				t.Error("auto: a session cookie")
			}

			form := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Terms: syncYAML, KakaoSync: kakaoSync})
			form.Emulators["kakao"].SetFaults(c.faults)
			cl = form.Client()
			r = do(t, cl, "GET", approve(t, form, "kakao", startLogin(t, form, cl, "kakao", "")), nil, nil)
			wantStatus(t, r, 200)
			if got := strings.Join(formTags(r.body), ","); got != "service,privacy,marketing,age" {
				t.Errorf("form: terms %s", got)
			}
			if !strings.Contains(form.Logs.String(), "provider terms not read") {
				t.Error("form: the failure is not logged")
			}
			r = do(t, cl, "POST", form.URL+"/auth/signup", url.Values{"csrf_token": {csrfOf(t, r)}, "nickname": {"n"}, "terms": {"service", "privacy", "age"}}, nil)
			wantStatus(t, r, 303)
			if got := strings.Join(termsOf(t, me(t, form, cl)), " "); got != "age/form privacy/form service/form" {
				t.Errorf("form: terms %s", got)
			}
		})
	}
}
