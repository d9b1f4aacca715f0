package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/socialbroker/broker/broker/brokertest"
)

// Sign in with Apple in Chromium: the emulated Apple runs on localhost, the
// broker on 127.0.0.1, two different sites. Apple's page POSTs the callback
// cross-site, so the browser sends the broker's SameSite=Lax state cookie
// not with the POST but with the navigation the broker's answer makes; the
// login completes, first (signup prefilled with the posted name) and
// returning, and no code ever shows in a URL the browser visited.
func TestBrowserAppleFormPost(t *testing.T) {
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "apple"}, EmulatorHosts: map[string]string{"apple": "localhost"}})
	emu := env.Emulators["apple"]
	if !strings.HasPrefix(emu.URL(), "http://localhost:") || !strings.HasPrefix(env.URL, "http://127.0.0.1:") {
		t.Fatalf("the emulator (%s) and the broker (%s) must be on different sites", emu.URL(), env.URL)
	}
	b := startBrowser(t)
	demo := env.URL + "/demo/"
	loginURL := env.URL + "/auth/login?return_to=" + url.QueryEscape(demo)

	step := "apple first login"
	b.do(step+": login page", chromedp.Navigate(loginURL+"&lang=en"), chromedp.WaitVisible(chromedp.ID("login-apple")))
	if label := run(b, step+": button", chromedp.TextContent(chromedp.ID("login-apple"))); !strings.Contains(label, "Sign in with Apple") {
		b.fail(step, fmt.Errorf("the Apple button reads %q", label))
	}
	b.screenshot("login-apple")
	b.do(step+": click", chromedp.Click(chromedp.ID("login-apple")))
	b.expect(step+": consent page", "#approve", "#error-code")
	if where := run(b, step+": consent URL", chromedp.Location()); !strings.HasPrefix(where, emu.URL()) {
		b.fail(step, fmt.Errorf("consent page at %s, want the emulator at %s", where, emu.URL()))
	}
	b.do(step+": approve", chromedp.Click(chromedp.ID("approve")))
	b.expect(step+": signup form", "input[name=nickname]", "#error-code", "#status")
	nick := run(b, step+": prefilled nickname", chromedp.Evaluate[string](`document.querySelector('input[name=nickname]').value`))
	if nick != "Alex Appleseed" {
		b.fail(step, fmt.Errorf("the signup form is prefilled with %q, want the name Apple posted", nick))
	}
	b.screenshot("signup-apple")
	b.do(step+": signup", chromedp.Click(chromedp.ID("signup-submit")))
	b.expect(step+": demo", "#status", "#error-code")
	b.wantVerified(step, "apple", "Alex Appleseed")
	b.checkAppleRequests(step, env)

	// The state cookie stayed SameSite=Lax; the form_post cookie is gone.
	cookies := run(b, step+": cookies", func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{env.URL + "/auth/callback/apple"}})
		return r.Cookies, err
	})
	for _, c := range cookies {
		if c.Name == "broker_formpost" || c.Name == "broker_login" {
			b.fail(step, fmt.Errorf("cookie %s left behind: %+v", c.Name, c))
		}
	}

	// Signed out, a returning login: Apple posts no user; the name stays.
	step = "apple returning login"
	b.do("logout", chromedp.Click(chromedp.ID("logout")))
	b.demoState("after logout", "signed out")
	b.do(step+": login page", chromedp.Navigate(loginURL), chromedp.WaitVisible(chromedp.ID("login-apple")))
	b.do(step+": click", chromedp.Click(chromedp.ID("login-apple")))
	b.expect(step+": consent page", "#approve", "#error-code")
	b.do(step+": approve", chromedp.Click(chromedp.ID("approve")))
	b.expect(step+": demo", "#status", "#error-code", "input[name=nickname]")
	b.wantVerified(step, "apple", "Alex Appleseed")
	b.checkAppleRequests(step, env)
}

// checkAppleRequests checks the tab's requests: the callback was POSTed
// cross-site from the emulator, continued with a GET carrying no code, and
// no URL the browser visited holds an authorization code.
func (b *browser) checkAppleRequests(step string, env *brokertest.Env) {
	b.t.Helper()
	b.network.mu.Lock()
	entries := append([]netEntry(nil), b.network.entries...)
	origins := map[network.RequestID]string{}
	for _, e := range entries {
		origins[e.id] = b.network.origin[e.id]
	}
	b.network.mu.Unlock()
	posted, continued := false, false
	for _, e := range entries {
		if !strings.HasPrefix(e.url, env.URL+"/auth/callback/apple") {
			continue
		}
		u, _ := url.Parse(e.url)
		if u.Query().Has("code") || u.Query().Has("user") || u.Query().Has("id_token") {
			b.t.Fatalf("%s: a URL carries the callback's values: %s", step, e.url)
		}
		switch {
		case e.method == "POST" && e.status == 200:
			posted = true
			if o := origins[e.id]; !strings.Contains(o, "localhost") {
				b.t.Fatalf("%s: the callback POST came from Origin %q, want the emulator's", step, o)
			}
		case e.method == "GET" && u.RawQuery == "form_post=1":
			continued = true
		}
	}
	if !posted || !continued {
		b.t.Fatalf("%s: callback POSTed %v, continued %v\nrequests:\n%s", step, posted, continued, b.network)
	}
}
