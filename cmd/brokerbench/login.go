package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/socialbroker/broker/internal/fakeidp"
)

// emuProxy sits between the broker and an emulator's token and userinfo
// endpoints (the server-to-server calls of a callback) and times them, so
// that a login's broker time can be told from the provider's. Each call is
// attributed to its login by the authorization code (token request) and
// by the access token the emulator issued for that code (userinfo).
type emuProxy struct {
	target string // the emulator's base URL
	client *http.Client
	srv    *http.Server
	base   string

	mu       sync.Mutex
	byCode   map[string]time.Duration
	codeOfAT map[string]string
}

func startEmuProxy(target string, tr http.RoundTripper) (*emuProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &emuProxy{
		target: strings.TrimSuffix(target, "/"), client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		base: "http://" + ln.Addr().String(), byCode: map[string]time.Duration{}, codeOfAT: map[string]string{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *emuProxy) Close() { _ = p.srv.Close() }

func (p *emuProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	code, bearer := "", ""
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil {
			code = v.Get("code")
		}
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		bearer = a[7:]
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for _, h := range []string{"Content-Type", "Accept", "Authorization", "User-Agent"} {
		if v := r.Header.Values(h); len(v) > 0 {
			out.Header[h] = v
		}
	}
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	// Record before answering: the broker cannot finish the callback (and
	// the client cannot look the time up) before it has this answer.
	d := time.Since(t0)
	p.mu.Lock()
	if code == "" && bearer != "" {
		code = p.codeOfAT[bearer]
		delete(p.codeOfAT, bearer)
	} else if code != "" {
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(rb, &tr) == nil && tr.AccessToken != "" {
			p.codeOfAT[tr.AccessToken] = code
		}
	}
	if code != "" {
		p.byCode[code] += d
	}
	p.mu.Unlock()
	for _, h := range []string{"Content-Type", "Cache-Control", "Pragma", "WWW-Authenticate"} {
		if v := resp.Header.Values(h); len(v) > 0 {
			w.Header()[h] = v
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(rb)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(rb)
}

// take returns (and forgets) the provider time spent on a login's code.
func (p *emuProxy) take(code string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.byCode[code]
	delete(p.byCode, code)
	return d
}

// loginProvider is one emulated provider: each login client has its own
// (its own user), so concurrent logins do not queue on one identity row.
type loginProvider struct {
	name  string
	em    *fakeidp.Emulator
	proxy *emuProxy
}

func startLoginProviders(n int, issuer string, tr http.RoundTripper) ([]*loginProvider, error) {
	var out []*loginProvider
	for i := range n {
		name := fmt.Sprintf("emu%d", i+1)
		em, err := fakeidp.Start(fakeidp.Options{
			Kind: fakeidp.OAuth2, ClientID: "bench-" + name, ClientSecret: "bench-secret-" + name,
			RedirectURIs: []string{issuer + "/auth/callback/" + name},
			User:         fakeidp.User{Subject: strconv.Itoa(7000000 + i), Nickname: "bench" + strconv.Itoa(i+1), Email: name + "@bench.example", Name: "Bench User " + strconv.Itoa(i+1)},
		})
		if err != nil {
			closeLoginProviders(out)
			return nil, err
		}
		px, err := startEmuProxy(em.URL(), tr)
		if err != nil {
			em.Close()
			closeLoginProviders(out)
			return nil, err
		}
		out = append(out, &loginProvider{name: name, em: em, proxy: px})
	}
	return out, nil
}

func closeLoginProviders(ps []*loginProvider) {
	for _, p := range ps {
		p.proxy.Close()
		p.em.Close()
	}
}

// providersYAML is the providers: block of the bench config: each
// emulator's own entry, with the token and userinfo calls through its proxy.
func providersYAML(ps []*loginProvider) string {
	var entries []map[string]any
	for _, p := range ps {
		m := p.em.ProviderConfig(p.name, false)
		m["display_name"] = "Bench " + p.name
		for _, k := range []string{"token_url", "userinfo_url"} {
			m[k] = strings.Replace(m[k].(string), p.em.URL(), p.proxy.base, 1)
		}
		entries = append(entries, m)
	}
	b, err := yaml.Marshal(entries)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return string(b)
}

// loginTiming is one login round trip.
type loginTiming struct {
	total    time.Duration // login start + consent + callback + token
	broker   time.Duration // login start + callback − provider time + token
	consent  time.Duration // em.Approve: the browser at the provider (emulator)
	provider time.Duration // the broker's token and userinfo calls, inside the emulator (via the proxy)

	start, callback, token time.Duration // the broker's share by step (callback without provider time)
}

// login runs one login → consent → callback → token with provider p.
func login(ctx context.Context, client *http.Client, issuer string, p *loginProvider) (loginTiming, string) {
	var lt loginTiming
	send := func(method, u, cookie string) (*http.Response, []byte, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, nil, 0, err
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b, time.Since(t0), err
	}
	fail := func(step string, resp *http.Response, err error) (loginTiming, string) {
		if err != nil {
			return lt, step + "_transport"
		}
		return lt, step + "_" + strconv.Itoa(resp.StatusCode)
	}

	// 1. The login button: a 302 to the provider and the state cookie.
	resp, _, d1, err := send(http.MethodGet, issuer+"/auth/login/"+p.name, "")
	if err != nil || resp.StatusCode != http.StatusFound {
		return fail("login", resp, err)
	}
	state := cookieValue(resp, "broker_login")
	if state == "" {
		return lt, "login_no_cookie"
	}
	// 2. The user consents at the provider.
	t0 := time.Now()
	cb, err := p.em.Approve(ctx, resp.Header.Get("Location"))
	lt.consent = time.Since(t0)
	if err != nil {
		return lt, "consent"
	}
	code := cb.Query().Get("code")
	if code == "" {
		return lt, "consent_no_code"
	}
	// 3. The callback: code exchange and userinfo (through the proxy), the
	// identity lookup, a session and the refresh cookie.
	resp, _, d3, err := send(http.MethodGet, cb.String(), "broker_login="+state)
	lt.provider = p.proxy.take(code)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		return fail("callback", resp, err)
	}
	refresh := cookieValue(resp, "refresh_token")
	if refresh == "" {
		return lt, "callback_no_cookie"
	}
	// 4. The frontend's first token request.
	resp, body, d4, err := send(http.MethodPost, issuer+"/auth/token", "refresh_token="+refresh)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fail("token", resp, err)
	}
	if !bytes.Contains(body, []byte(`"access_token"`)) {
		return lt, "token_bad_body"
	}
	lt.total = d1 + lt.consent + d3 + d4
	lt.start, lt.callback, lt.token = d1, d3-lt.provider, d4
	lt.broker = lt.start + lt.callback + lt.token
	return lt, ""
}
