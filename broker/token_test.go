package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
)

func TestRefreshCookieRotation(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	uid := env.NewUser(t, "kakao", "1")
	tok, sess := env.NewSession(t, uid)
	c := &http.Client{}

	r := do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
	wantStatus(t, r, 200)
	b := r.json(t)
	if b.AccessToken == "" || b.TokenType != "Bearer" || b.ExpiresIn != 600 {
		t.Fatalf("token response = %+v, want access_token, Bearer, 600", b)
	}
	if b.RefreshToken != "" {
		t.Fatal("cookie variant put the refresh token in the body")
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q, want no-store", cc)
	}
	ck := r.cookie("refresh_token")
	if ck == nil || ck.Value == "" || ck.Value == tok {
		t.Fatalf("rotated cookie = %+v, want a new value", ck)
	}
	if !ck.HttpOnly || ck.Path != "/auth" || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie attributes = %+v, want HttpOnly, Path=/auth, SameSite=Lax", ck)
	}
	remaining := int(sess.ExpiresAt.Sub(env.Clock.Now()) / time.Second)
	if ck.MaxAge < remaining-5 || ck.MaxAge > remaining {
		t.Fatalf("cookie Max-Age = %d, want the session's remaining lifetime ≈ %d", ck.MaxAge, remaining)
	}
	claims := verifyClaims(t, env, b.AccessToken)
	if claims["sub"] != uid || claims["sid"] != sess.ID || claims["idp"] != "kakao" {
		t.Fatalf("claims = %v, want sub %s sid %s idp kakao", claims, uid, sess.ID)
	}

	// The new cookie works; the old one within the grace gets the same child.
	retry := do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
	wantStatus(t, retry, 200)
	if got := retry.cookie("refresh_token"); got == nil || got.Value != ck.Value {
		t.Fatalf("grace retry cookie = %v, want the same child %q", got, ck.Value)
	}
	next := do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(ck.Value))
	wantStatus(t, next, 200)
}

func TestRefreshReuseAfterGraceRevokesSession(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	uid := env.NewUser(t, "kakao", "1")
	tok, _ := env.NewSession(t, uid)
	c := &http.Client{}
	r := do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
	wantStatus(t, r, 200)
	child := r.cookie("refresh_token").Value

	env.Clock.Advance(11 * time.Second) // past reuse_grace
	stolen := do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
	wantStatus(t, stolen, 401)
	if b := stolen.json(t); b.Error != "invalid_grant" {
		t.Fatalf("reuse: error %q, want invalid_grant", b.Error)
	}
	if ck := stolen.cookie("refresh_token"); ck == nil || ck.MaxAge >= 0 {
		t.Fatalf("401 should clear the cookie, got %+v", ck)
	}
	// The whole session is gone: the legitimate child is refused too.
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(child)), 401)
}

// Every unusable refresh token gets the same 401 body: no oracle.
func TestRefreshFailuresLookAlike(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	uid := env.NewUser(t, "kakao", "1")
	c := &http.Client{}

	revoked, sess := env.NewSession(t, uid)
	if err := env.Store.RevokeSession(context.Background(), sess.ID, env.Clock.Now(), "test"); err != nil {
		t.Fatal(err)
	}
	reused, _ := env.NewSession(t, uid)
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(reused)), 200)
	env.Clock.Advance(20 * time.Second)
	unknown, _ := brokertestToken()
	cases := map[string]map[string]string{
		"missing":   nil,
		"malformed": withCookie("not-a-token"),
		"unknown":   withCookie(unknown),
		"revoked":   withCookie(revoked),
		"reused":    withCookie(reused),
	}
	var first string
	for name, hdr := range cases {
		r := do(t, c, "POST", env.URL+"/auth/token", nil, hdr)
		wantStatus(t, r, 401)
		if first == "" {
			first = string(r.body)
		}
		if string(r.body) != first {
			t.Errorf("%s: body %s differs from %s", name, r.body, first)
		}
	}
	// The honest path still works.
	good, _ := env.NewSession(t, uid)
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(good)), 200)
}

func TestRefreshFormVariant(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	tok, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	c := &http.Client{}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}
	r := do(t, c, "POST", env.URL+"/auth/token", form, nil)
	wantStatus(t, r, 200)
	b := r.json(t)
	if b.RefreshToken == "" || b.RefreshToken == tok || b.AccessToken == "" {
		t.Fatalf("form variant = %+v, want a new refresh_token in the body", b)
	}
	if r.cookie("refresh_token") != nil {
		t.Fatal("form variant set a cookie")
	}
	// A refresh token in the query string is never accepted.
	q := do(t, c, "POST", env.URL+"/auth/token?refresh_token="+url.QueryEscape(b.RefreshToken), url.Values{"grant_type": {"refresh_token"}}, nil)
	wantStatus(t, q, 400)
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", url.Values{"grant_type": {"password"}}, nil), 400)
	// Repeated parameters are refused (RFC 6749 §3.2), whichever repeats.
	for name, f := range map[string]url.Values{
		"refresh_token": {"grant_type": {"refresh_token"}, "refresh_token": {b.RefreshToken, b.RefreshToken}},
		"grant_type":    {"grant_type": {"refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"}, "refresh_token": {b.RefreshToken}},
		"unrelated":     {"grant_type": {"refresh_token"}, "refresh_token": {b.RefreshToken}, "scope": {"a", "b"}},
	} {
		r := do(t, c, "POST", env.URL+"/auth/token", f, nil)
		if r.StatusCode != 400 || r.json(t).Error != "invalid_request" {
			t.Fatalf("%s repeated: %d %s, want 400 invalid_request", name, r.StatusCode, r.body)
		}
	}
	// The token from the body still works after the refused attempts.
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {b.RefreshToken}}, nil), 200)
}

func TestConcurrentRefreshOfOneToken(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	tok, sess := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	const n = 50
	var wg sync.WaitGroup
	children := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := do(t, &http.Client{}, "POST", env.URL+"/auth/token", nil, withCookie(tok))
			if r.StatusCode != 200 {
				t.Errorf("status %d: %s", r.StatusCode, r.body)
				return
			}
			children <- r.cookie("refresh_token").Value
		}()
	}
	wg.Wait()
	close(children)
	distinct := map[string]bool{}
	for c := range children {
		distinct[c] = true
	}
	if len(distinct) != 1 {
		t.Fatalf("%d concurrent refreshes produced %d distinct children, want 1", n, len(distinct))
	}
	var live int
	if err := env.Store.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM refresh_tokens WHERE session_id = $1 AND rotated_at IS NULL`, sess.ID).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != 1 {
		t.Fatalf("live tokens = %d, want 1", live)
	}
}

func TestRefreshIdleAndAbsoluteExpiry(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{IdleTTL: time.Hour, RefreshTTL: 3 * time.Hour})
	uid := env.NewUser(t, "kakao", "1")
	c := &http.Client{}

	idle, _ := env.NewSession(t, uid)
	tok, _ := env.NewSession(t, uid)
	// Keep one session busy every 50 minutes; the other stays idle.
	for i := 0; i < 3; i++ {
		env.Clock.Advance(50 * time.Minute)
		r := do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
		wantStatus(t, r, 200)
		tok = r.cookie("refresh_token").Value
		if i == 2 && r.cookie("refresh_token").MaxAge > int((30*time.Minute)/time.Second) {
			t.Fatalf("Max-Age %d grew past the absolute lifetime", r.cookie("refresh_token").MaxAge)
		}
	}
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(idle)), 401)
	env.Clock.Advance(31 * time.Minute) // 3h01m after creation: absolute end, though used 31 minutes ago
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok)), 401)
}

func TestLogout(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	uid := env.NewUser(t, "kakao", "1")
	c := &http.Client{}
	a, _ := env.NewSession(t, uid)
	b, _ := env.NewSession(t, uid)
	cc, _ := env.NewSession(t, uid)

	r := do(t, c, "POST", env.URL+"/auth/logout", nil, withCookie(a))
	wantStatus(t, r, 204)
	if ck := r.cookie("refresh_token"); ck == nil || ck.MaxAge >= 0 {
		t.Fatalf("logout should clear the cookie, got %+v", ck)
	}
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(a)), 401)
	// One session only: the others still work.
	r = do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(b))
	wantStatus(t, r, 200)
	b = r.cookie("refresh_token").Value

	wantStatus(t, do(t, c, "POST", env.URL+"/auth/logout?all=true", nil, withCookie(b)), 204)
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(b)), 401)
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(cc)), 401)
	// Logging out with nothing is fine.
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/logout", nil, nil), 204)
}

func TestOriginCheckAndCORS(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	tok, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	c := &http.Client{}
	evil := map[string]string{"Cookie": "refresh_token=" + tok, "Origin": "https://evil.example"}
	r := do(t, c, "POST", env.URL+"/auth/token", nil, evil)
	wantStatus(t, r, 403)
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS header for a foreign origin")
	}
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/logout", nil, evil), 403)
	pre := do(t, c, "OPTIONS", env.URL+"/auth/token", nil, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
	if pre.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("preflight allowed a foreign origin")
	}
	// The refused requests did not consume the token; the allowed origin works, with credentials.
	app := map[string]string{"Cookie": "refresh_token=" + tok, "Origin": "https://app.example.com"}
	r = do(t, c, "POST", env.URL+"/auth/token", nil, app)
	wantStatus(t, r, 200)
	if r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("CORS headers = %v", r.Header)
	}
	pre = do(t, c, "OPTIONS", env.URL+"/auth/token", nil, map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
	wantStatus(t, pre, 204)
}

// Logout racing a storm of refreshes of the same session: whatever order
// they land in, no token of the session works afterwards.
func TestLogoutRacingRefresh(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	tok, sess := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	var wg sync.WaitGroup
	children := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := do(t, &http.Client{}, "POST", env.URL+"/auth/token", nil, withCookie(tok))
			if r.StatusCode == 200 {
				children <- r.cookie("refresh_token").Value
			} else if r.StatusCode != 401 {
				t.Errorf("refresh during logout: %d %s", r.StatusCode, r.body)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		wantStatus(t, do(t, &http.Client{}, "POST", env.URL+"/auth/logout", nil, withCookie(tok)), 204)
	}()
	wg.Wait()
	close(children)
	for c := range children {
		wantStatus(t, do(t, &http.Client{}, "POST", env.URL+"/auth/token", nil, withCookie(c)), 401)
	}
	wantStatus(t, do(t, &http.Client{}, "POST", env.URL+"/auth/token", nil, withCookie(tok)), 401)
	got, err := env.Store.Session(context.Background(), sess.ID)
	if err != nil || got.RevokedAt == nil {
		t.Fatalf("session after logout: %+v %v, want revoked", got, err)
	}
}

// Revocations racing rotations: while every session of a user refreshes in
// a loop, the user's sessions are ended (by the CLI's store call, by
// logout all=true, by deleting the account). No refresh that starts after
// the revocation returned succeeds, and no token ever issued mints again.
func TestRevocationRacingRotation(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"},
		Extra: "limits:\n  per_minute: { login: 0, callback: 0, token: 0 }\n"})
	revokers := map[string]func(t *testing.T, uid, tok string){
		"sessions revoke": func(t *testing.T, uid, _ string) {
			if _, err := env.Store.RevokeUserSessions(context.Background(), uid, time.Now(), "admin"); err != nil {
				t.Error(err)
			}
		},
		"logout all": func(t *testing.T, _, tok string) {
			if r := do(t, &http.Client{}, "POST", env.URL+"/auth/logout?all=true", nil, withCookie(tok)); r.StatusCode != 204 {
				t.Errorf("logout all: %d", r.StatusCode)
			}
		},
		"delete account": func(t *testing.T, _, tok string) {
			at := accessToken(t, env, tok)
			if r := do(t, &http.Client{}, "DELETE", env.URL+"/auth/me", nil, bearer(at)); r.StatusCode != 204 {
				t.Errorf("delete account: %d", r.StatusCode)
			}
		},
	}
	i := 0
	for name, revoke := range revokers {
		i++
		t.Run(name, func(t *testing.T) {
			uid := env.NewUser(t, "kakao", fmt.Sprint(100+i))
			own, _ := env.NewSession(t, uid) // the revoker's own session
			const racers = 4
			var (
				mu       sync.Mutex
				issued   []string
				revokedT time.Time // zero until the revocation returned
				late     int
			)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range racers {
				tok, _ := env.NewSession(t, uid)
				mu.Lock()
				issued = append(issued, tok)
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := &http.Client{}
					for {
						select {
						case <-stop:
							return
						default:
						}
						started := time.Now()
						status, next, _, err := refreshOnce(c, env.URL, tok)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						if status == 200 {
							issued = append(issued, next)
							if !revokedT.IsZero() && started.After(revokedT) {
								late++
							}
							tok = next
						}
						mu.Unlock()
						if status == 401 {
							return
						}
					}
				}()
			}
			time.Sleep(150 * time.Millisecond)
			revoke(t, uid, own)
			mu.Lock()
			revokedT = time.Now()
			mu.Unlock()
			time.Sleep(150 * time.Millisecond)
			close(stop)
			wg.Wait()
			if late != 0 {
				t.Fatalf("%d refreshes that started after the revocation succeeded", late)
			}
			if len(issued) <= racers {
				t.Fatalf("only %d tokens issued: the rotations did not race the revocation", len(issued))
			}
			for _, tok := range append(issued, own) {
				if status, _, _, _ := refreshOnce(&http.Client{}, env.URL, tok); status != 401 {
					t.Fatalf("a token of a revoked session: status %d, want 401", status)
				}
			}
		})
	}
}
