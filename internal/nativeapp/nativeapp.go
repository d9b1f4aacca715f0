// Package nativeapp is a tiny native app, for tests and as a reference for
// app teams: it signs in through the broker the way an iOS or Android app
// does with the system browser (RFC 8252). It makes a PKCE verifier and a
// state, builds the login URL for the browser, takes the browser's final
// redirect (on a loopback listener it runs itself, or handed over as the
// private-use scheme URL the operating system would deliver), checks the
// state, redeems the broker code at POST /auth/token and refreshes through
// the form variant. Nothing in it is specific to a provider.
package nativeapp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// App is one registered native app (native_apps in the broker's config).
type App struct {
	Issuer   string       // the broker's base URL
	ClientID string       // its native_apps client_id
	HTTP     *http.Client // for the token endpoint; nil: a client with a 30 s timeout
}

// Tokens is a successful token response.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// Error is an OAuth error: from the redirect (error=…) or the token endpoint.
type Error struct {
	Status      int // HTTP status at the token endpoint; 0 for a redirect
	Code        string
	Description string
}

func (e *Error) Error() string {
	return fmt.Sprintf("oauth error %s (%d): %s", e.Code, e.Status, e.Description)
}

// Login is one sign-in in progress.
type Login struct {
	app         *App
	URL         string // what the app opens in the system browser
	RedirectURI string
	State       string
	Verifier    string

	ln       net.Listener
	srv      *http.Server
	received chan string // the full redirect URL the listener got
}

// Start prepares a login with provider that ends at redirectURI (a
// private-use scheme or claimed https URL). extra adds query parameters to
// the login URL (prompt, login_hint).
func (a *App) Start(provider, redirectURI string, extra url.Values) *Login {
	l := &Login{app: a, RedirectURI: redirectURI, State: random(24), Verifier: random(32)}
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("client_id", a.ClientID)
	q.Set("redirect_uri", redirectURI)
	q.Set("response_type", "code")
	q.Set("state", l.State)
	q.Set("code_challenge", Challenge(l.Verifier))
	q.Set("code_challenge_method", "S256")
	l.URL = strings.TrimSuffix(a.Issuer, "/") + "/auth/login/" + url.PathEscape(provider) + "?" + q.Encode()
	return l
}

// StartLoopback prepares a login that ends on a loopback listener the app
// opens on 127.0.0.1 with a port the system picks, at path (registered as
// http://127.0.0.1{path}, without a port). Close stops the listener.
func (a *App) StartLoopback(provider, path string, extra url.Values) (*Login, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := a.Start(provider, "http://"+ln.Addr().String()+path, extra)
	l.ln, l.received = ln, make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		select {
		case l.received <- "http://" + ln.Addr().String() + r.URL.RequestURI():
		default: // one redirect per login
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "<!doctype html><title>Signed in</title><p>You can close this window and return to the app.</p>")
	})
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = l.srv.Serve(ln) }()
	return l, nil
}

// Close stops a loopback listener.
func (l *Login) Close() {
	if l.srv != nil {
		_ = l.srv.Close()
	}
}

// Wait returns the redirect the loopback listener received.
func (l *Login) Wait(ctx context.Context) (string, error) {
	if l.received == nil {
		return "", errors.New("nativeapp: not a loopback login")
	}
	select {
	case u := <-l.received:
		return u, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Finish takes the browser's final redirect (as the loopback listener or
// the operating system delivered it): it checks that it is this login's
// redirect URI (any port for a loopback one) with this login's state, and
// redeems the code. A redirect with error=… is an *Error.
func (l *Login) Finish(ctx context.Context, redirected string) (Tokens, error) {
	code, err := l.Code(redirected)
	if err != nil {
		return Tokens{}, err
	}
	return l.Redeem(ctx, code, l.Verifier)
}

// Code checks a final redirect and returns its code.
func (l *Login) Code(redirected string) (string, error) {
	base, query, _ := strings.Cut(redirected, "?")
	if base != l.RedirectURI {
		return "", fmt.Errorf("nativeapp: redirect to %q, want %q", base, l.RedirectURI)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", err
	}
	if q.Get("state") != l.State {
		return "", fmt.Errorf("nativeapp: state %q, want %q", q.Get("state"), l.State)
	}
	if e := q.Get("error"); e != "" {
		return "", &Error{Code: e, Description: q.Get("error_description")}
	}
	if q.Get("code") == "" {
		return "", errors.New("nativeapp: redirect without a code")
	}
	return q.Get("code"), nil
}

// Redeem exchanges a broker code (grant_type=authorization_code).
func (l *Login) Redeem(ctx context.Context, code, verifier string) (Tokens, error) {
	return l.app.token(ctx, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {l.RedirectURI},
		"client_id": {l.app.ClientID}, "code_verifier": {verifier},
	})
}

// Refresh rotates a refresh token (the form variant of POST /auth/token).
func (a *App) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	return a.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

func (a *App) token(ctx context.Context, form url.Values) (Tokens, error) {
	c := a.HTTP
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(a.Issuer, "/")+"/auth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return Tokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return Tokens{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Tokens{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return Tokens{}, &Error{Status: resp.StatusCode, Code: e.Error, Description: e.Description}
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		return Tokens{}, fmt.Errorf("nativeapp: token response Cache-Control %q, want no-store", cc)
	}
	var t Tokens
	if err := json.Unmarshal(body, &t); err != nil {
		return Tokens{}, err
	}
	if t.AccessToken == "" || t.RefreshToken == "" || t.TokenType != "Bearer" || t.ExpiresIn <= 0 {
		return Tokens{}, fmt.Errorf("nativeapp: incomplete token response %s", body)
	}
	return t, nil
}

// Challenge is the S256 code_challenge of a verifier.
func Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
