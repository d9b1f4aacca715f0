package broker_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/socialbroker/broker/broker/brokertest"
)

// The language chosen on the login page survives the provider round trip
// to the signup form and to error pages, whose "back to sign in" keeps the
// return_to; reloading the signup form (at the callback URL) shows it
// again.
func TestLanguageAndReturnToStick(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "google"}})
	c := env.Client()
	const returnTo = "https://app.example.com/orders/7"
	r := do(t, c, "GET", env.URL+"/auth/login?lang=ko&return_to="+url.QueryEscape(returnTo), nil, map[string]string{"Accept-Language": "en"})
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.body), `lang="ko"`) {
		t.Fatal("login page not in Korean")
	}
	// The browser's Accept-Language says English; the choice was Korean.
	en := map[string]string{"Accept-Language": "en-US,en;q=0.9"}
	r = do(t, c, "GET", env.URL+"/auth/login/kakao?return_to="+url.QueryEscape(returnTo), nil, en)
	wantStatus(t, r, 302)
	cb := approve(t, env, "kakao", r.Header.Get("Location"))
	form := do(t, c, "GET", cb, nil, en)
	wantStatus(t, form, 200)
	if !strings.Contains(string(form.body), `lang="ko"`) || !strings.Contains(string(form.body), "회원가입") {
		t.Fatalf("signup form after the round trip is not in Korean: %s", form.body)
	}
	// A reload of the callback URL shows the form again.
	again := do(t, c, "GET", cb, nil, en)
	wantStatus(t, again, 200)
	if !csrfRE.Match(again.body) {
		t.Fatalf("reload of the signup form: %s", again.body)
	}
	// An error after the round trip: Korean, and back to sign in keeps return_to.
	r = do(t, c, "GET", env.URL+"/auth/login/google?return_to="+url.QueryEscape(returnTo), nil, en)
	denied, err := env.Emulators["google"].Deny(t.Context(), r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	page := do(t, c, "GET", denied.String(), nil, en)
	wantStatus(t, page, 403)
	body := string(page.body)
	if !strings.Contains(body, `lang="ko"`) {
		t.Fatalf("error page not in Korean: %s", body)
	}
	if !strings.Contains(body, `href="/auth/login?return_to=`+url.QueryEscape(returnTo)+`"`) {
		t.Fatalf("back to sign in lost the return_to: %s", body)
	}
	// Without a choice, Accept-Language decides.
	r = do(t, env.Client(), "GET", env.URL+"/auth/login", nil, map[string]string{"Accept-Language": "ko-KR"})
	if !strings.Contains(string(r.body), `lang="ko"`) {
		t.Fatal("Accept-Language ko did not decide")
	}
}
