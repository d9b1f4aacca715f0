package broker_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
)

// Every account operation at once on one user, for two seconds: refreshes
// on two sessions, /auth/me, unlink and re-link of a provider, logins with
// that provider (which may create a second user while it is unlinked),
// logout of everything, and finally the provider's unlink webhook and the
// account's deletion. No answer is a 5xx, and afterwards no user is left
// without an identity.
func TestAccountOperationsRace(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "google"}, Signup: "auto",
		Extra: "limits:\n  per_minute: { login: 0, callback: 0, token: 0 }\n"})
	a, b := env.Client(), env.Client()
	loginAs(t, env, a, "kakao", "")
	wantStatus(t, link(t, env, a, "google"), 303)
	loginAs(t, env, b, "kakao", "") // a second session of the same user

	var calls, serverErrors atomic.Int64
	// send runs one request from any goroutine; a 5xx fails the test. It
	// returns the status, the body and the Location.
	send := func(c *http.Client, method, u string, hdr map[string]string) (int, string, string) {
		req, _ := http.NewRequest(method, u, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, u, err)
			return 0, "", ""
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		calls.Add(1)
		if resp.StatusCode >= 500 {
			serverErrors.Add(1)
			t.Errorf("%s %s: %d %s", method, req.URL.Path, resp.StatusCode, body)
		}
		return resp.StatusCode, string(body), resp.Header.Get("Location")
	}
	access := func(c *http.Client) string {
		status, body, _ := send(c, "POST", env.URL+"/auth/token", nil)
		if status != 200 {
			return ""
		}
		_, rest, _ := strings.Cut(body, `"access_token":"`)
		tok, _, _ := strings.Cut(rest, `"`)
		return tok
	}
	// flow runs a login or link (start) through the emulated provider.
	flow := func(c *http.Client, provider, start string) {
		status, _, authURL := send(c, "GET", start, nil)
		if status != 302 {
			return
		}
		cb, err := env.Emulators[provider].Approve(context.Background(), authURL)
		if err != nil {
			t.Errorf("%s consent: %v", provider, err)
			return
		}
		send(c, "GET", cb.String(), nil)
	}

	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	loop := func(f func()) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				f()
			}
		})
	}
	loop(func() { send(a, "POST", env.URL+"/auth/token", nil) })
	loop(func() { send(b, "POST", env.URL+"/auth/token", nil) })
	loop(func() {
		if at := access(b); at != "" {
			send(b, "GET", env.URL+"/auth/me", bearer(at))
		}
	})
	loop(func() {
		if at := access(a); at != "" {
			send(a, "DELETE", env.URL+"/auth/identities/google", bearer(at))
		}
		flow(a, "google", env.URL+"/auth/link/google")
	})
	loop(func() { flow(env.Client(), "google", env.URL+"/auth/login/google") })
	loop(func() {
		time.Sleep(300 * time.Millisecond)
		send(b, "POST", env.URL+"/auth/logout?all=true", nil)
		flow(b, "kakao", env.URL+"/auth/login/kakao")
	})
	time.Sleep(1500 * time.Millisecond)
	hook := env.URL + "/auth/webhooks/kakao/unlink?user_id=" + url.QueryEscape(brokertest.Users["kakao"].Subject)
	send(env.Client(), "GET", hook, map[string]string{"Authorization": "KakaoAK kakao-admin-key"})
	if at := access(a); at != "" {
		send(a, "DELETE", env.URL+"/auth/me", bearer(at))
	}
	wg.Wait()
	t.Logf("%d requests, %d server errors", calls.Load(), serverErrors.Load())
	if calls.Load() < 50 {
		t.Fatalf("only %d requests: the race did not run", calls.Load())
	}
	var orphans int
	if err := env.Store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM users u
		WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Fatalf("%d users without an identity", orphans)
	}
}
