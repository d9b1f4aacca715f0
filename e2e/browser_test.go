package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/socialbroker/broker/broker/brokertest"
)

const (
	chromiumPath = "/usr/bin/chromium"
	stepTimeout  = 20 * time.Second // one browser step; a hang fails instead of blocking CI
	startTimeout = 60 * time.Second // Chromium's start on a busy 2-core machine
	testTimeout  = 8 * time.Minute  // the whole browser session, a backstop
)

// lockedBuffer collects Chromium's output and the page's console.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// browser is one headless Chromium with one tab.
type browser struct {
	t         *testing.T
	ctx       context.Context // the tab's context (no timeout: it owns the browser)
	artifacts string
	output    *lockedBuffer // Chromium's stdout and stderr
	console   *lockedBuffer // the page's console and uncaught exceptions
	network   *netLog       // the requests the tab made
}

// netLog keeps the tab's requests, the last ones of which a failure
// prints as "METHOD URL (Origin: …) → status" lines.
type netLog struct {
	mu      sync.Mutex
	method  map[network.RequestID]string
	url     map[network.RequestID]string
	origin  map[network.RequestID]string // from the headers as sent (extra info)
	entries []netEntry
}

type netEntry struct {
	id          network.RequestID
	method, url string
	status      int64
}

func (n *netLog) add(id network.RequestID, status int64) {
	n.entries = append(n.entries, netEntry{id: id, method: n.method[id], url: n.url[id], status: status})
	if len(n.entries) > 200 {
		n.entries = n.entries[len(n.entries)-200:]
	}
}

// event is a chromedp.Listen callback: quick, no commands.
func (n *netLog) event(ev any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		if e.RedirectResponse != nil { // the previous hop of this request
			n.add(e.RequestID, e.RedirectResponse.Status)
		}
		n.method[e.RequestID], n.url[e.RequestID] = e.Request.Method, e.Request.URL
	case *network.EventRequestWillBeSentExtraInfo:
		for k, v := range e.Headers {
			if strings.EqualFold(k, "origin") {
				n.origin[e.RequestID] = fmt.Sprint(v)
			}
		}
	case *network.EventResponseReceived:
		n.add(e.RequestID, e.Response.Status)
	}
}

func (n *netLog) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	last := n.entries
	if len(last) > 30 {
		last = last[len(last)-30:]
	}
	var b strings.Builder
	for _, e := range last {
		o := ""
		if v, ok := n.origin[e.id]; ok && e.method != "GET" {
			o = " (Origin: " + v + ")"
		}
		fmt.Fprintf(&b, "%s %s%s → %d\n", e.method, e.url, o, e.status)
	}
	return b.String()
}

// artifactsDir is $ARTIFACTS_DIR or artifacts/ at the repository root.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		root, err := filepath.Abs("..")
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

// startBrowser launches Chromium with exactly the flags CI uses. A browser
// that is installed but cannot start fails the test with the reason, never
// a skip; one that is not installed skips it loudly outside CI.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		requireInstalled(t, "Chromium", "apt-get install -y chromium", err)
	}
	b := &browser{t: t, artifacts: artifactsDir(t), output: &lockedBuffer{}, console: &lockedBuffer{}, network: &netLog{
		method: map[network.RequestID]string{}, url: map[network.RequestID]string{}, origin: map[network.RequestID]string{},
	}}
	root, cancelRoot := context.WithTimeout(context.Background(), testTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(root,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(b.output),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		fmt.Fprintf(b.console, "chromedp: "+format+"\n", args...)
	}))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		cancelRoot()
	})
	b.ctx = ctx

	// The first action starts the browser; its context must be the tab's
	// own (a timeout there would end the browser), so bound it from here.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("Chromium (%s) could not start: %v\nits output:\n%s", chromiumPath, err, b.output)
		}
	case <-time.After(startTimeout):
		cancelTab()
		t.Fatalf("Chromium (%s) did not start within %v\nits output:\n%s", chromiumPath, startTimeout, b.output)
	}
	if err := chromedp.Listen(ctx, b.network.event); err != nil {
		t.Fatalf("listening to the tab's network events: %v", err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			fmt.Fprintf(b.console, "console: %s\n", m)
		}
	}()
	return b
}

// fail ends the test after saving what the page looked like.
func (b *browser) fail(step string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	where, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ''`))
	shot := ""
	if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
		name := "failure-" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '-'
		}, strings.ToLower(step)) + ".png"
		if os.WriteFile(filepath.Join(b.artifacts, name), png, 0o644) == nil {
			shot = filepath.Join(b.artifacts, name)
		}
	}
	requests := b.network.String()
	hint := ""
	if strings.Contains(requests, "(Origin: null) → 403") {
		hint = "\nhint: a browser sends Origin: null with a form POST from a page served with Referrer-Policy: no-referrer; the broker must accept its own forms"
	}
	b.t.Fatalf("browser step %q: %v\npage %s (screenshot %s):\n%s\nconsole:\n%s\nlast requests:\n%s%s", step, err, where, shot, body, b.console, requests, hint)
}

// do runs actions as one bounded step.
func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(step, err)
	}
}

// run runs one bounded action that returns a value.
func run[T any](b *browser, step string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(step, err)
	}
	return v
}

// screenshot saves the whole page as name.png in the artifacts folder.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png := run(b, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(b.artifacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// phone is a 390×844 CSS-pixel phone screen (an iPhone 12–14), at 2× density.
func phone() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)
}

// demoState waits until the demo page's #status says want (or an error)
// and returns #status, #claims and #profile (the /auth/me JSON).
func (b *browser) demoState(step, want string) (status, claims, profile string) {
	b.t.Helper()
	poll := chromedp.PollFunction[chromedp.Void](`(want) => {
		const s = document.getElementById('status');
		if (!s) return false;
		const t = s.textContent;
		if (t === want) return want !== 'verified' || document.getElementById('profile').textContent !== '';
		return /^(error|invalid)/.test(t);
	}`, chromedp.WithPollingArgs(want), chromedp.WithPollingTimeout(stepTimeout-2*time.Second))
	// A navigation still landing (a redirect chain ending on the demo)
	// destroys the page's script context under the poll: poll again there.
	for range 3 {
		ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
		_, err := chromedp.Run(ctx, poll)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "Cannot find context") {
			break
		}
	}
	run(b, step+": wait for #status "+want, poll)
	status = run(b, step+": #status", chromedp.TextContent(chromedp.ID("status")))
	claims = run(b, step+": #claims", chromedp.TextContent(chromedp.ID("claims")))
	profile = run(b, step+": #profile", chromedp.TextContent(chromedp.ID("profile")))
	if status != want {
		b.fail(step, fmt.Errorf("#status = %q, want %q", status, want))
	}
	return status, claims, profile
}

// wantVerified checks that the demo shows a verified token of idp.
func (b *browser) wantVerified(step, idp, nickname string) (jti string) {
	b.t.Helper()
	_, claims, profile := b.demoState(step, "verified")
	if !strings.Contains(claims, `"idp": "`+idp+`"`) {
		b.fail(step, fmt.Errorf("#claims lacks \"idp\": %q:\n%s", idp, claims))
	}
	if nickname != "" && !strings.Contains(profile, nickname) {
		b.fail(step, fmt.Errorf("#profile lacks the nickname %q:\n%s", nickname, profile))
	}
	i := strings.Index(claims, `"jti": "`)
	if i < 0 {
		b.fail(step, fmt.Errorf("#claims lacks jti:\n%s", claims))
	}
	jti = claims[i+len(`"jti": "`):]
	return jti[:strings.IndexByte(jti, '"')]
}

// expect waits until the page shows want, or fails as soon as it shows
// one of the others instead (the broker's #error-code page, say), naming it
// and its text. It polls from Go, so a navigation in between is harmless.
func (b *browser) expect(step, want string, others ...string) {
	b.t.Helper()
	sels, _ := json.Marshal(append([]string{want}, others...))
	js := `(() => { for (const s of ` + string(sels) + `) { if (document.querySelector(s)) return s; } return ''; })()`
	deadline := time.Now().Add(stepTimeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		cancel()
		switch {
		case err == nil && got == want:
			return
		case err == nil && got != "":
			text := run(b, step+": "+got, chromedp.TextContent(chromedp.CSS(got)))
			b.fail(step, fmt.Errorf("the page shows %s %q instead of %s", got, strings.TrimSpace(text), want))
		case time.Now().After(deadline):
			b.fail(step, fmt.Errorf("%s did not appear within %v (last error: %v)", want, stepTimeout, err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// refreshCookie returns the browser's refresh_token cookie for the
// broker's /auth/ path, or nil.
func (b *browser) refreshCookie(step string, env *brokertest.Env) *network.Cookie {
	b.t.Helper()
	cookies := run(b, step+": cookies", func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{env.URL + "/auth/token"}})
		return r.Cookies, err
	})
	for _, c := range cookies {
		if c.Name == "refresh_token" {
			return c
		}
	}
	return nil
}

// clearNickname empties the signup form's nickname input.
func clearNickname() chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.querySelector('input[name=nickname]').value = ''`)
}

// login runs a first login with provider from the broker's login page:
// the provider's consent page, then the signup form with nickname.
func (b *browser) login(env *brokertest.Env, loginURL, provider, nickname string, shots bool) {
	b.t.Helper()
	step := "login with " + provider
	b.do(step+": login page", chromedp.Navigate(loginURL), chromedp.WaitVisible(chromedp.ID("login-"+provider)))
	b.do(step+": click the button", chromedp.Click(chromedp.ID("login-"+provider)))
	b.expect(step+": consent page", "#approve", "#error-code")
	if where := run(b, step+": consent URL", chromedp.Location()); !strings.HasPrefix(where, env.Emulators[provider].URL()) {
		b.fail(step, fmt.Errorf("consent page at %s, want the %s emulator at %s", where, provider, env.Emulators[provider].URL()))
	}
	b.do(step+": approve", chromedp.Click(chromedp.ID("approve")))
	b.expect(step+": signup form", "input[name=nickname]", "#error-code", "#status")
	b.do(step+": signup form", chromedp.WaitVisible(chromedp.CSS(`input[name=nickname]`)))
	if shots {
		b.screenshot("signup-form")
		// A blank nickname (spaces): the form again, with the message. The
		// form comes prefilled with the provider's nickname: clear it first.
		b.do(step+": blank nickname",
			clearNickname(),
			chromedp.SendKeys(chromedp.CSS(`input[name=nickname]`), "   "),
			chromedp.Click(chromedp.ID("signup-submit")),
		)
		b.expect(step+": blank nickname refused", "#message", "#error-code", "#status")
		b.do(step+": blank nickname refused",
			chromedp.WaitVisible(chromedp.ID("message")),
			chromedp.WaitVisible(chromedp.CSS(`input[name=nickname]`)),
		)
		msg := run(b, step+": #message", chromedp.TextContent(chromedp.ID("message")))
		if strings.TrimSpace(msg) == "" {
			b.fail(step, errors.New("#message is empty after a blank nickname"))
		}
		b.t.Logf("blank nickname: %q", msg)
		b.screenshot("signup-blank-nickname")
	}
	b.do(step+": signup",
		clearNickname(),
		chromedp.SendKeys(chromedp.CSS(`input[name=nickname]`), nickname),
		chromedp.Click(chromedp.ID("signup-submit")),
	)
	b.expect(step+": demo after signup", "#status", "#error-code")
	if where := run(b, step+": demo URL", chromedp.Location()); where != env.URL+"/demo/" {
		b.fail(step, fmt.Errorf("after signup at %s, want %s/demo/", where, env.URL))
	}
}

// The whole browser journey: login page (ko and en), Kakao consent, the
// signup form (a blank nickname refused), the demo frontend verifying its
// token with WebCrypto, a reload on the refresh cookie, logout, Naver and
// Google logins, and the error page of a refused return_to.
func TestBrowserLogin(t *testing.T) {
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver", "google"}})
	b := startBrowser(t)
	demo := env.URL + "/demo/"
	loginURL := env.URL + "/auth/login?return_to=" + url.QueryEscape(demo)

	// The login page on a phone, in Korean and in English.
	b.do("phone viewport", phone())
	for _, lang := range []string{"ko", "en"} {
		b.do("login page "+lang, chromedp.Navigate(loginURL+"&lang="+lang), chromedp.WaitVisible(chromedp.ID("login-kakao")))
		if got := run(b, "login page lang", chromedp.Evaluate[string](`document.documentElement.lang`)); got != lang {
			b.fail("login page "+lang, fmt.Errorf("<html lang=%q>, want %q", got, lang))
		}
		for _, p := range []string{"kakao", "naver", "google"} {
			b.do("login page "+lang+" has "+p, chromedp.WaitVisible(chromedp.ID("login-"+p)))
		}
		b.screenshot("login-" + lang + "-phone")
	}

	// Kakao, a new user: consent, signup form, then the demo.
	b.login(env, loginURL, "kakao", "브라우저친구", true)
	first := b.wantVerified("kakao login", "kakao", "브라우저친구")
	// The demo lists where the user is signed in: this browser, current.
	b.do("session list", chromedp.WaitVisible(`#sessions li.session`))
	if txt := run(b, "session list text", chromedp.TextContent(`#sessions`)); !strings.Contains(txt, "this browser") || !strings.Contains(txt, "kakao") {
		b.fail("session list", fmt.Errorf("#sessions = %q, want this browser's kakao session", txt))
	}
	b.screenshot("demo-verified")

	// The refresh cookie as the browser keeps it: HttpOnly, SameSite=Lax,
	// Path=/auth, persistent; brokertest sets cookies.secure: false.
	ck := b.refreshCookie("after kakao login", env)
	if ck == nil || !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteLax || ck.Path != "/auth" || ck.Session || ck.Secure {
		b.fail("refresh cookie", fmt.Errorf("refresh_token cookie = %+v, want HttpOnly, SameSite=Lax, Path=/auth, persistent, not Secure", ck))
	}
	if js := run(b, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(js, "refresh_token") {
		b.fail("refresh cookie", fmt.Errorf("page script can read the refresh token: document.cookie = %q", js))
	}

	// A reload gets a new access token from the (rotated) refresh cookie.
	b.do("reload", chromedp.Reload())
	if again := b.wantVerified("after reload", "kakao", "브라우저친구"); again == first {
		b.fail("after reload", fmt.Errorf("the same jti %s after a reload: no new token was issued", again))
	}

	// Logout: signed out, the login link is offered, and the cookie is gone.
	b.do("logout", chromedp.Click(chromedp.ID("logout")))
	b.demoState("after logout", "signed out")
	b.do("login link after logout", chromedp.WaitVisible(chromedp.ID("login-link")))
	if ck := b.refreshCookie("after logout", env); ck != nil {
		b.fail("after logout", fmt.Errorf("the refresh cookie is still there: %+v", ck))
	}
	code := run(b, "token after logout", chromedp.Evaluate[int](
		`fetch('/auth/token', {method: 'POST', credentials: 'include'}).then((r) => r.status)`, chromedp.EvalAwaitPromise))
	if code != 401 {
		b.fail("token after logout", fmt.Errorf("POST /auth/token from the page = %d, want 401", code))
	}

	// Naver and Google, each a new user of its own.
	for _, p := range []string{"naver", "google"} {
		b.login(env, loginURL, p, "friend-of-"+p, false)
		b.wantVerified(p+" login", p, "friend-of-"+p)
	}

	// A return_to outside redirects.allowed: the error page, no redirect.
	resp := run(b, "evil return_to", chromedp.NavigateResponse(env.URL+"/auth/login/kakao?return_to="+url.QueryEscape("https://evil.example/")))
	if resp.Status != 400 {
		b.fail("evil return_to", fmt.Errorf("status %d, want 400", resp.Status))
	}
	if got := run(b, "evil return_to: #error-code", chromedp.TextContent(chromedp.ID("error-code"))); got != "return_to_not_allowed" {
		b.fail("evil return_to", fmt.Errorf("#error-code = %q, want return_to_not_allowed", got))
	}
	if where := run(b, "evil return_to: URL", chromedp.Location()); !strings.HasPrefix(where, env.URL+"/") {
		b.fail("evil return_to", fmt.Errorf("the browser went to %s", where))
	}
	b.screenshot("error-return-to")

	// The login page on a desktop screen too.
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 800))
	b.do("login page desktop", chromedp.Navigate(loginURL+"&lang=en"), chromedp.WaitVisible(chromedp.ID("login-kakao")))
	b.screenshot("login-en-desktop")
}
