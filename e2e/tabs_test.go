package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/socialbroker/broker/broker/brokertest"
)

// tabSetup loads the JavaScript client (clients/js, served by the broker as
// /static/broker-client.js) into a page of the broker's origin and gives it
// a loop that asks for a token and checks it at /auth/me at once, with
// plain fetch: a token the broker refuses is counted, never retried.
const tabSetup = `(async (lockTimeoutMs) => {
  const { createClient } = await import('/static/broker-client.js');
  const auth = createClient({ issuer: location.origin, lockTimeoutMs });
  const s = { auth, running: false, checks: 0, ok: 0, nulls: 0, bad: [], errors: [], events: [], tokens: new Set() };
  window.__tab = s;
  auth.onChange((e) => s.events.push(e.type));
  const expOf = (t) => JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp * 1000;
  s.check = async () => {
    const t = await auth.getAccessToken();
    s.checks++;
    if (!t) { s.nulls++; return; }
    s.tokens.add(t);
    if (expOf(t) <= Date.now()) s.bad.push('getAccessToken returned an expired token');
    const r = await fetch('/auth/me', { headers: { Authorization: 'Bearer ' + t } });
    if (r.status === 200) s.ok++; else s.bad.push('/auth/me answered ' + r.status);
  };
  s.start = () => {
    s.running = true;
    s.loop = (async () => {
      while (s.running) {
        try { await s.check(); } catch (e) { s.errors.push(String(e)); }
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    })();
  };
  s.stop = async () => { s.running = false; await s.loop; };
  s.stats = () => ({ checks: s.checks, ok: s.ok, nulls: s.nulls, bad: s.bad.slice(0, 5), badCount: s.bad.length,
    errors: s.errors.slice(0, 5), events: s.events, tokens: s.tokens.size, visibility: document.visibilityState });
  return document.visibilityState;
})`

// tabStats is what a tab's loop counted.
type tabStats struct {
	Checks     int      `json:"checks"`
	OK         int      `json:"ok"`
	Nulls      int      `json:"nulls"`
	BadCount   int      `json:"badCount"`
	Tokens     int      `json:"tokens"`
	Bad        []string `json:"bad"`
	Errors     []string `json:"errors"`
	Events     []string `json:"events"`
	Visibility string   `json:"visibility"`
}

// tab is one page of the browser with the client loaded.
type tab struct {
	b    *browser
	name string
	ctx  context.Context
}

// openTab opens a new tab of b on url (a page of the broker's origin) and
// loads the client into it.
func (b *browser) openTab(name, url string, lockTimeout time.Duration) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	// The first action creates the tab, bound to its own context: bound the
	// wait from here, as startBrowser does.
	opened := make(chan error, 1)
	go func() { opened <- chromedp.Do(ctx, chromedp.Navigate(url)) }()
	select {
	case err := <-opened:
		if err != nil {
			b.t.Fatalf("%s: opening %s: %v\nconsole:\n%s", name, url, err, b.console)
		}
	case <-time.After(startTimeout):
		b.t.Fatalf("%s: the tab did not open within %v", name, startTimeout)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			fmt.Fprintf(b.console, "%s console: %s\n", name, m)
		}
	}()
	tb := &tab{b: b, name: name, ctx: ctx}
	vis := evalTab[string](tb, "load the client", fmt.Sprintf("%s(%d)", tabSetup, lockTimeout.Milliseconds()))
	b.t.Logf("%s: client loaded, page %s", name, vis)
	return tb
}

// evalTab evaluates expr in the tab (awaiting a promise) as one bounded step.
func evalTab[T any](tb *tab, step, expr string) T {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.b.t.Fatalf("%s: %s: %v\nconsole:\n%s\nlast requests of the first tab:\n%s", tb.name, step, err, tb.b.console, tb.b.network)
	}
	return v
}

func (tb *tab) stats() tabStats { return evalTab[tabStats](tb, "stats", `window.__tab.stats()`) }

// followRealTime keeps the broker's clock on the wall clock (which the
// browser uses too), so that access tokens expire and reuse_grace passes as
// they would in production; it stops at the end of the test.
func followRealTime(t *testing.T, env *brokertest.Env) {
	catchUp := func() {
		if d := time.Since(env.Clock.Now()); d > 0 {
			env.Clock.Advance(d)
		}
	}
	catchUp() // the clock stood still while the broker started
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				catchUp()
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
}

var tokenRequests = regexp.MustCompile(`(?m)^broker_http_requests_total\{route="POST /auth/token",status="(\d+)"\} (\S+)$`)

// tokenAnswers reads the broker's /metrics: POST /auth/token answers by status.
func tokenAnswers(t *testing.T, env *brokertest.Env) map[int]int {
	t.Helper()
	resp, err := env.Client().Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[int]int{}
	for _, m := range tokenRequests.FindAllStringSubmatch(string(body), -1) {
		status, _ := strconv.Atoi(m[1])
		n, _ := strconv.ParseFloat(m[2], 64)
		out[status] += int(n)
	}
	return out
}

// reuseDetections counts the broker's theft warnings in its log.
func reuseDetections(env *brokertest.Env) int {
	logs := env.Logs.String()
	return strings.Count(logs, "refresh token reused after its grace") + strings.Count(logs, "old refresh token presented")
}

// Five tabs of one browser, signed into one session with a 5 s access_ttl,
// each asking the JavaScript client for a token in a loop and using it at
// once: one refresh at a time across the tabs, no false reuse detection, no
// 401, every token handed out valid. Then a tab holds the refresh lock
// forever (asleep) and another still gets a token after lockTimeoutMs; then
// a sign-out in one tab signs every tab out.
func TestTabsShareOneSession(t *testing.T) {
	run := 15 * time.Second
	if os.Getenv("CI") == "true" {
		run = time.Minute
	}
	const (
		ttl         = 5 * time.Second
		grace       = 2 * time.Second // short: a replay of an old cookie shows as reuse quickly
		lockTimeout = 1500 * time.Millisecond
		nTabs       = 5
	)
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, AccessTTL: ttl, ReuseGrace: grace})
	followRealTime(t, env)
	b := startBrowser(t)

	// The browser holds a session's refresh cookie, as after a login.
	uid := env.NewUser(t, "kakao", "tabs")
	refresh, sess := env.NewSession(t, uid)
	b.do("set the refresh cookie", chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		on := true
		_, err := cdp.Call(ctx, tgt, network.SetCookie, network.SetCookieParams{
			Name: "refresh_token", Value: refresh, URL: env.URL + "/auth/token", Path: "/auth",
			HTTPOnly: &on, SameSite: network.CookieSameSiteLax,
		})
		return err
	}))

	tabs := make([]*tab, nTabs)
	for i := range tabs {
		tabs[i] = b.openTab(fmt.Sprintf("tab %d", i+1), env.URL+"/healthz", lockTimeout)
	}
	before := tokenAnswers(t, env)

	// All tabs at once, for the run.
	start := time.Now()
	for _, tb := range tabs {
		evalTab[chromedp.Void](tb, "start", `window.__tab.start()`)
	}
	failIf := func(when string) {
		t.Helper()
		for _, tb := range tabs {
			s := tb.stats()
			if s.BadCount > 0 || s.Nulls > 0 || len(s.Errors) > 0 {
				t.Fatalf("%s, %s: %d bad tokens %q, %d nulls, errors %q\nconsole:\n%s", when, tb.name, s.BadCount, s.Bad, s.Nulls, s.Errors, b.console)
			}
		}
		if n := reuseDetections(env); n > 0 {
			t.Fatalf("%s: %d reuse detections\n%s", when, n, env.Logs)
		}
	}
	for time.Since(start) < run {
		time.Sleep(time.Second)
		failIf(fmt.Sprintf("after %v", time.Since(start).Round(time.Second)))
	}
	for _, tb := range tabs {
		evalTab[chromedp.Void](tb, "stop", `window.__tab.stop()`)
	}
	elapsed := time.Since(start)
	failIf("at the end")

	after := tokenAnswers(t, env)
	refreshes := after[200] - before[200]
	tokenRefusals := after[401] - before[401]
	var checks, tokens int
	for _, tb := range tabs {
		s := tb.stats()
		if s.Checks == 0 || s.OK != s.Checks {
			t.Errorf("%s: %d checks, %d accepted", tb.name, s.Checks, s.OK)
		}
		if strings.Join(s.Events, ",") != "signin" {
			t.Errorf("%s: change events %q, want one signin", tb.name, s.Events)
		}
		checks += s.Checks
		tokens += s.Tokens
		t.Logf("%s: %d checks, %d distinct tokens, page %s", tb.name, s.Checks, s.Tokens, s.Visibility)
	}
	// One refresh per token lifetime's second half (the default margin is
	// half of a short lifetime), shared by all tabs. Each tab refreshing on
	// its own would make five times as many.
	ideal := int(elapsed / (ttl / 2))
	t.Logf("multi-tab run: %d tabs, %v, %d refreshes (about %d needed), %d reuse detections, %d refresh 401s, %d checks at /auth/me, all accepted",
		nTabs, elapsed.Round(100*time.Millisecond), refreshes, ideal, reuseDetections(env), tokenRefusals, checks)
	writeFigures(t, map[string]any{
		"tabs": nTabs, "duration_s": elapsed.Seconds(), "access_ttl_s": ttl.Seconds(), "refreshes": refreshes,
		"reuse_detections": reuseDetections(env), "token_401s": tokenRefusals, "me_checks": checks, "me_refused": 0,
	})
	if tokenRefusals != 0 {
		t.Errorf("POST /auth/token answered 401 %d times", tokenRefusals)
	}
	if refreshes < ideal/2 || refreshes > 2*ideal+nTabs {
		t.Errorf("%d refreshes in %v with a %v access_ttl: want about %d, one at a time for all tabs", refreshes, elapsed, ttl, ideal)
	}
	if other := after[429] + after[500] + after[503] - before[429] - before[500] - before[503]; other != 0 {
		t.Errorf("POST /auth/token answered 429 or 5xx %d times", other)
	}

	// A tab asleep holding the lock: the others wait lockTimeoutMs, then
	// refresh anyway.
	evalTab[chromedp.Void](tabs[0], "hold the lock", `(() => {
		navigator.locks.request('broker-auth:' + location.origin, () => new Promise((r) => { window.__release = r; }));
		return new Promise((r) => setTimeout(r, 100));
	})()`)
	held := evalTab[bool](tabs[1], "lock held", `navigator.locks.query().then((q) => q.held.some((l) => l.name === 'broker-auth:' + location.origin))`)
	if !held {
		t.Fatal("the lock is not held")
	}
	time.Sleep(ttl) // every tab's token is stale now
	type wakeResult struct {
		OK     bool    `json:"ok"`
		Waited float64 `json:"waited"`
		Status int     `json:"status"`
	}
	woke := evalTab[wakeResult](tabs[1], "token while the lock is held", `(async () => {
		const t0 = performance.now();
		const t = await window.__tab.auth.getAccessToken();
		const waited = performance.now() - t0;
		const r = t ? await fetch('/auth/me', { headers: { Authorization: 'Bearer ' + t } }) : { status: 0 };
		return { ok: !!t, waited, status: r.status };
	})()`)
	t.Logf("with the lock held by a sleeping tab: token after %.0f ms, /auth/me %d", woke.Waited, woke.Status)
	if !woke.OK || woke.Status != 200 {
		t.Fatalf("with the lock held, the tab got no valid token: %+v\nconsole:\n%s", woke, b.console)
	}
	if woke.Waited < float64(lockTimeout.Milliseconds())-50 {
		t.Errorf("the token came after %.0f ms, before the lock timeout %v: was the lock held?", woke.Waited, lockTimeout)
	}
	for _, tb := range tabs[2:] { // they got it by broadcast, or refresh themselves past the timeout
		if ok := evalTab[bool](tb, "token after the sleeping tab", `window.__tab.auth.getAccessToken().then((t) => fetch('/auth/me', { headers: { Authorization: 'Bearer ' + t } })).then((r) => r.status === 200)`); !ok {
			t.Errorf("%s: no valid token while the lock is held", tb.name)
		}
	}
	evalTab[chromedp.Void](tabs[0], "release the lock", `window.__release()`)

	// Sign-out in one tab: every tab hears it, and no tab has a token.
	evalTab[chromedp.Void](tabs[2], "logout", `window.__tab.auth.logout()`)
	for _, tb := range tabs {
		ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
		_, err := chromedp.Run(ctx, chromedp.PollFunction[bool](`() => window.__tab.events.includes('signout')`,
			chromedp.WithPollingTimeout(10*time.Second)))
		cancel()
		if err != nil {
			t.Fatalf("%s did not hear the sign-out: %v (events %q)", tb.name, err, tb.stats().Events)
		}
		if tok := evalTab[*string](tb, "token after sign-out", `window.__tab.auth.getAccessToken()`); tok != nil {
			t.Errorf("%s: a token after sign-out", tb.name)
		}
	}
	if ck := b.refreshCookie("after sign-out", env); ck != nil {
		t.Errorf("the refresh cookie is still there after sign-out: %+v", ck)
	}
	if s, err := env.Store.Session(context.Background(), sess.ID); err != nil || s.RevokedAt == nil {
		t.Errorf("session after logout: revoked at %v (%v)", s.RevokedAt, err)
	}
	if n := reuseDetections(env); n != 0 {
		t.Errorf("%d reuse detections\n%s", n, env.Logs)
	}
}

// writeFigures keeps the multi-tab run's figures in the artifacts folder.
func writeFigures(t *testing.T, figures map[string]any) {
	t.Helper()
	b, _ := json.MarshalIndent(figures, "", "  ")
	path := filepath.Join(artifactsDir(t), "tabs-figures.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Errorf("writing %s: %v", path, err)
	}
}
