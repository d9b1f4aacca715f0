package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/nativeapp"
)

// appScheme is the private-use scheme of the app in this test.
const appScheme = "com.example.app"

// appRedirects watches a tab for navigations to the app's private-use
// scheme: the browser cannot open it (the operating system would hand it
// to the app), so the test takes it from the DevTools events instead.
type appRedirects struct {
	mu   sync.Mutex
	urls []string
	via  []string // the event that showed each
	seen chan struct{}
}

func (a *appRedirects) event(ev any) {
	var u, via string
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		u, via = e.Request.URL, "Network.requestWillBeSent"
	case *page.EventFrameRequestedNavigation:
		u, via = e.URL, "Page.frameRequestedNavigation"
	case *page.EventFrameStartedNavigating:
		u, via = e.URL, "Page.frameStartedNavigating"
	default:
		return
	}
	if !strings.HasPrefix(u, appScheme+":") {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.urls, a.via = append(a.urls, u), append(a.via, via)
	if len(a.urls) == 1 {
		close(a.seen)
	}
}

func (a *appRedirects) wait(d time.Duration) (u, via string, err error) {
	select {
	case <-a.seen:
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.urls[0], a.via[0], nil
	case <-time.After(d):
		return "", "", fmt.Errorf("no navigation to %s: within %v", appScheme, d)
	}
}

// The browser part of a native app's login with a private-use scheme
// redirect: the app opens the broker's login in Chromium (as
// ASWebAuthenticationSession or a Custom Tab would), the user approves at
// Naver and completes the signup form, and the last navigation goes to
// com.example.app:/oauth2redirect?code=…&state=…, which the test takes as
// the operating system would hand it to the app. The app then redeems the
// code. The browser never holds a refresh cookie.
func TestBrowserNativeApp(t *testing.T) {
	env := brokertest.New(t, brokertest.Options{Providers: []string{"naver"}, Extra: `native_apps:
  - client_id: com.example.app
    redirect_uris: [com.example.app:/oauth2redirect]
`})
	b := startBrowser(t)
	watch := &appRedirects{seen: make(chan struct{})}
	if err := chromedp.Listen(b.ctx, watch.event); err != nil {
		t.Fatal(err)
	}
	app := &nativeapp.App{Issuer: env.URL, ClientID: "com.example.app"}
	login := app.Start("naver", appScheme+":/oauth2redirect", url.Values{"lang": {"en"}})

	b.do("phone viewport", phone())
	b.do("open the app's login", chromedp.Navigate(login.URL))
	b.expect("naver consent page", "#approve", "#error-code")
	b.do("approve", chromedp.Click(chromedp.ID("approve")))
	b.expect("signup form", "input[name=nickname]", "#error-code")
	b.screenshot("native-signup-form")
	b.do("signup",
		clearNickname(),
		chromedp.SendKeys(chromedp.CSS(`input[name=nickname]`), "앱친구"),
		chromedp.Click(chromedp.ID("signup-submit")),
	)
	final, via, err := watch.wait(stepTimeout)
	if err != nil {
		b.fail("redirect to the app", err)
	}
	t.Logf("the app got %s (seen in %s)", strings.SplitN(final, "?", 2)[0], via)
	if ck := b.refreshCookie("after the native login", env); ck != nil {
		b.fail("no refresh cookie", fmt.Errorf("the browser holds a refresh cookie: %+v", ck))
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	tok, err := login.Finish(ctx, final)
	if err != nil {
		b.fail("redeem the code", fmt.Errorf("%s: %w", final, err))
	}
	if _, err := app.Refresh(ctx, tok.RefreshToken); err != nil {
		b.fail("refresh", err)
	}

	// A redirect URI the app did not register: the broker's page, and the
	// browser stays on the broker.
	evil := app.Start("naver", appScheme+":/oauth2redirect?next=evil", url.Values{"lang": {"en"}})
	resp := run(b, "unregistered redirect", chromedp.NavigateResponse(evil.URL))
	if resp.Status != 400 {
		b.fail("unregistered redirect", fmt.Errorf("status %d, want 400", resp.Status))
	}
	if got := run(b, "unregistered redirect: #error-code", chromedp.TextContent(chromedp.ID("error-code"))); got != "invalid_redirect_uri" {
		b.fail("unregistered redirect", fmt.Errorf("#error-code = %q, want invalid_redirect_uri", got))
	}
	b.screenshot("native-error-redirect-uri")
	watch.mu.Lock()
	n := len(watch.urls)
	watch.mu.Unlock()
	if n != 1 {
		b.fail("unregistered redirect", fmt.Errorf("%d navigations to the app, want the one of the login", n))
	}
}
