package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker"
	"github.com/socialbroker/broker/broker/brokertest"
)

// adminEnv is a broker with its admin listener and one admin key.
type adminEnv struct {
	*brokertest.Env
	admin *httptest.Server
	key   string
}

func newAdminEnv(t *testing.T, o brokertest.Options) *adminEnv {
	t.Helper()
	o.Extra += "admin:\n  listen: 127.0.0.1:9\n"
	env := brokertest.New(t, o)
	srv := httptest.NewServer(env.Broker.AdminHandler())
	t.Cleanup(srv.Close)
	key, hash := broker.NewAdminKey()
	if err := env.Store.CreateAdminKey(context.Background(), "alice", hash, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	return &adminEnv{Env: env, admin: srv, key: key}
}

// call sends an admin request with the admin key and decodes a JSON answer.
func (a *adminEnv) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	return adminCall(t, a.admin.URL, a.key, method, path, body)
}

func adminCall(t *testing.T, base, key, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAdminKeysGuardEverything(t *testing.T) {
	t.Parallel()
	a := newAdminEnv(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	revoked, hash := broker.NewAdminKey()
	if err := a.Store.CreateAdminKey(context.Background(), "bob", hash, a.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.RevokeAdminKey(context.Background(), "bob", a.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	paths := []string{"GET /admin/users", "GET /admin/users/x", "POST /admin/users/x/disable", "POST /admin/users/x/enable",
		"DELETE /admin/users/x/sessions", "DELETE /admin/users/x", "GET /admin/audit", "GET /admin/nope"}
	for _, p := range paths {
		method, path, _ := strings.Cut(p, " ")
		for name, key := range map[string]string{"none": "", "wrong": "bka_" + strings.Repeat("A", 43), "revoked": revoked, "not a key": "hello"} {
			if code, body := adminCall(t, a.admin.URL, key, method, path, `{"reason":"x"}`); code != 401 || body["error"] != "invalid_token" {
				t.Errorf("%s with %s key: %d %v, want 401 invalid_token", p, name, code, body)
			}
		}
	}
	// The public listener serves neither the admin API nor /metrics.
	for _, p := range []string{"/admin/users", "/metrics"} {
		r := do(t, &http.Client{}, "GET", a.URL+p, nil, map[string]string{"Authorization": "Bearer " + a.key})
		wantStatus(t, r, 404)
	}
	// The honest key works.
	if code, _ := a.call(t, "GET", "/admin/users", ""); code != 200 {
		t.Fatalf("GET /admin/users with the key: %d", code)
	}
	if code, _ := adminCall(t, a.admin.URL, "", "GET", "/metrics", ""); code != 200 {
		t.Fatalf("GET /metrics on the admin listener: %d, want 200 without a key", code)
	}
}

func TestAdminUsersSearchAndPages(t *testing.T) {
	t.Parallel()
	a := newAdminEnv(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	var ids []string
	for i := range 7 {
		ids = append(ids, a.NewUser(t, "kakao", fmt.Sprint(500+i)))
	}
	code, body := a.call(t, "GET", "/admin/users?provider=kakao&subject=503", "")
	users, _ := body["users"].([]any)
	if code != 200 || len(users) != 1 || users[0].(map[string]any)["id"] != ids[3] {
		t.Fatalf("search by identity: %d %v", code, body)
	}
	u := users[0].(map[string]any)
	if u["disabled"] != nil || u["identities"].([]any)[0].(map[string]any)["subject"] != "503" {
		t.Fatalf("user = %v", u)
	}
	// Pages of 3, with users created between pages: no user twice, none of
	// the first seven missed.
	seen := map[string]int{}
	cursor := ""
	for page := 0; ; page++ {
		code, body := a.call(t, "GET", "/admin/users?limit=3&cursor="+url.QueryEscape(cursor), "")
		if code != 200 {
			t.Fatalf("page %d: %d %v", page, code, body)
		}
		for _, u := range body["users"].([]any) {
			seen[u.(map[string]any)["id"].(string)]++
		}
		a.NewUser(t, "kakao", fmt.Sprint(900+page)) // inserted meanwhile
		next, _ := body["next_cursor"].(string)
		if next == "" || page > 20 {
			break
		}
		cursor = next
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("user %s seen %d times across pages", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("user %s seen %d times", id, n)
		}
	}
	if code, _ := a.call(t, "GET", "/admin/users?limit=0", ""); code != 400 {
		t.Fatalf("limit=0: %d, want 400", code)
	}
	if code, _ := a.call(t, "GET", "/admin/users/nope", ""); code != 404 {
		t.Fatalf("unknown user: %d, want 404", code)
	}
}

// Disabling revokes every session at once and refuses every way back in
// (login, token exchange, the broker's own endpoints with earlier access
// tokens) until the user is enabled again.
func TestAdminDisableRefusesEveryEntry(t *testing.T) {
	t.Parallel()
	a := newAdminEnv(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	c := a.Client()
	loginAs(t, a.Env, c, "kakao", "")
	at := currentAccess(t, a.Env, c)
	var uid string
	uid, _ = me(t, a.Env, c)["sub"].(string)

	code, body := a.call(t, "POST", "/admin/users/"+uid+"/disable", `{"reason":"chargeback"}`)
	if d, _ := body["disabled"].(map[string]any); code != 200 || d["reason"] != "chargeback" {
		t.Fatalf("disable: %d %v", code, body)
	}
	wantStatus(t, do(t, c, "POST", a.URL+"/auth/token", nil, nil), 401)
	wantStatus(t, do(t, c, "GET", a.URL+"/auth/me", nil, bearer(at)), 401)
	r := do(t, c, "GET", approve(t, a.Env, "kakao", startLogin(t, a.Env, c, "kakao", "")), nil, nil)
	wantStatus(t, r, 403)
	if !strings.Contains(string(r.body), "user_disabled") || r.cookie("refresh_token") != nil {
		t.Fatalf("login of a disabled user: %s", r.body)
	}
	r = exchange(t, a.Env, "kakao", a.Emulators["kakao"].MintIDToken(nil))
	if r.StatusCode != 403 || r.json(t).Error != "user_disabled" {
		t.Fatalf("exchange of a disabled user: %d %s", r.StatusCode, r.body)
	}
	if n := countRows(t, a.Env, "sessions WHERE revoked_at IS NULL"); n != 0 {
		t.Fatalf("live sessions of the disabled user: %d", n)
	}
	// Enabled again: the login works.
	if code, body := a.call(t, "POST", "/admin/users/"+uid+"/enable", ""); code != 200 || body["disabled"] != nil {
		t.Fatalf("enable: %d %v", code, body)
	}
	loginAs(t, a.Env, c, "kakao", "")
	if code, _ := a.call(t, "POST", "/admin/users/nope/disable", `{"reason":"x"}`); code != 404 {
		t.Fatalf("disable unknown: %d", code)
	}
	if code, _ := a.call(t, "POST", "/admin/users/"+uid+"/disable", `not json`); code != 400 {
		t.Fatalf("disable without a JSON body: %d", code)
	}
	// The audit log names the admin.
	code, body = a.call(t, "GET", "/admin/audit?type=user_disabled&user_id="+uid, "")
	evs, _ := body["events"].([]any)
	if code != 200 || len(evs) != 1 || evs[0].(map[string]any)["actor"] != "admin:alice" {
		t.Fatalf("audit: %d %v", code, body)
	}
}

func TestAdminRevokeSessionsAndDelete(t *testing.T) {
	t.Parallel()
	a := newAdminEnv(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	c := a.Client()
	loginAs(t, a.Env, c, "kakao", "")
	uid, _ := me(t, a.Env, c)["sub"].(string)
	code, body := a.call(t, "GET", "/admin/users/"+uid, "")
	if ss, _ := body["sessions"].([]any); code != 200 || len(ss) != 1 {
		t.Fatalf("user: %d %v", code, body)
	}
	if code, _ := a.call(t, "DELETE", "/admin/users/"+uid+"/sessions", ""); code != 204 {
		t.Fatalf("revoke sessions: %d", code)
	}
	wantStatus(t, do(t, c, "POST", a.URL+"/auth/token", nil, nil), 401)
	loginAs(t, a.Env, c, "kakao", "")
	if code, _ := a.call(t, "DELETE", "/admin/users/"+uid, ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := a.call(t, "DELETE", "/admin/users/"+uid, ""); code != 404 {
		t.Fatalf("delete again: %d", code)
	}
	wantStatus(t, do(t, c, "POST", a.URL+"/auth/token", nil, nil), 401)
	if n := countRows(t, a.Env, "revocations"); n != 1 {
		t.Fatalf("queued revocations = %d, want 1 (the kakao grant)", n)
	}
	// The audit log pages newest first with a cursor.
	seen := map[string]bool{}
	cursor := ""
	for range 50 {
		code, body := a.call(t, "GET", "/admin/audit?limit=2&cursor="+cursor, "")
		if code != 200 {
			t.Fatalf("audit page: %d", code)
		}
		for _, e := range body["events"].([]any) {
			id := e.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("audit row %s twice", id)
			}
			seen[id] = true
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if n := countRows(t, a.Env, "audit_log"); len(seen) != n {
		t.Fatalf("paged %d audit rows, table has %d", len(seen), n)
	}
}

// A user's own sessions: listed with the current one marked, one revoked
// by id; another user's session id is a 404 and revokes nothing.
func TestOwnSessions(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "google"}, Signup: "auto"})
	phone, laptop := env.Client(), env.Client()
	const android = "Mozilla/5.0 (Linux; Android 14; SM-S921N) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
	phone.Transport = uaTransport{android}
	loginAs(t, env, phone, "kakao", "")
	loginAs(t, env, laptop, "kakao", "")
	at := currentAccess(t, env, laptop)
	r := do(t, laptop, "GET", env.URL+"/auth/sessions", nil, bearer(at))
	wantStatus(t, r, 200)
	var list struct {
		Sessions []struct {
			ID, IDP, Kind, IP string
			Current           bool
			UserAgent         struct{ Raw, Browser, OS string } `json:"user_agent"`
		}
	}
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Sessions) != 2 {
		t.Fatalf("sessions = %s", r.body)
	}
	var phoneID string
	current := 0
	for _, s := range list.Sessions {
		if s.Current {
			current++
		}
		if s.UserAgent.Raw == android {
			phoneID = s.ID
			if s.UserAgent.Browser != "Samsung Internet" || s.UserAgent.OS != "Android" || s.Kind != "web" || s.IDP != "kakao" || s.IP != "127.0.0.1" {
				t.Fatalf("phone session = %+v", s)
			}
		}
	}
	if current != 1 || phoneID == "" {
		t.Fatalf("sessions = %s", r.body)
	}
	// Another user cannot touch it.
	stranger := env.Client()
	loginAs(t, env, stranger, "google", "")
	r = do(t, stranger, "DELETE", env.URL+"/auth/sessions/"+phoneID, nil, bearer(currentAccess(t, env, stranger)))
	wantStatus(t, r, 404)
	wantStatus(t, do(t, phone, "POST", env.URL+"/auth/token", nil, nil), 200)
	wantStatus(t, do(t, laptop, "DELETE", env.URL+"/auth/sessions/nope", nil, bearer(at)), 404)
	// The owner signs the phone out.
	wantStatus(t, do(t, laptop, "DELETE", env.URL+"/auth/sessions/"+phoneID, nil, bearer(at)), 204)
	wantStatus(t, do(t, phone, "POST", env.URL+"/auth/token", nil, nil), 401)
	wantStatus(t, do(t, laptop, "POST", env.URL+"/auth/token", nil, nil), 200)
	wantStatus(t, do(t, laptop, "GET", env.URL+"/auth/sessions", nil, nil), 401)
}

// uaTransport sends every request with a User-Agent.
type uaTransport struct{ ua string }

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return http.DefaultTransport.RoundTrip(r)
}

// Disabling a user while they log in, refresh and link at the same time
// never leaves a live session behind.
func TestDisableRacingLoginRefreshLink(t *testing.T) {
	t.Parallel()
	a := newAdminEnv(t, brokertest.Options{Providers: []string{"kakao", "naver"}, Signup: "auto"})
	for round := range 5 {
		c := a.Client()
		loginAs(t, a.Env, c, "kakao", "")
		uid, _ := me(t, a.Env, c)["sub"].(string)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				lc := a.Client()
				r := do(t, lc, "GET", approve(t, a.Env, "kakao", startLogin(t, a.Env, lc, "kakao", "")), nil, nil)
				if r.StatusCode != 303 && r.StatusCode != 403 {
					t.Errorf("login during disable: %d", r.StatusCode)
				}
			})
			wg.Go(func() {
				r := do(t, c, "POST", a.URL+"/auth/token", nil, nil)
				if r.StatusCode != 200 && r.StatusCode != 401 {
					t.Errorf("refresh during disable: %d", r.StatusCode)
				}
			})
		}
		wg.Go(func() {
			if code, _ := a.call(t, "POST", "/admin/users/"+uid+"/disable", `{"reason":"race"}`); code != 200 {
				t.Errorf("disable: %d", code)
			}
		})
		wg.Wait()
		if n := countRows(t, a.Env, fmt.Sprintf("sessions WHERE user_id = '%s' AND revoked_at IS NULL", uid)); n != 0 {
			t.Fatalf("round %d: %d live sessions of a disabled user", round, n)
		}
		if code, _ := a.call(t, "DELETE", "/admin/users/"+uid, ""); code != 204 {
			t.Fatalf("cleanup delete: %d", code)
		}
		a.Clock.Advance(time.Second)
	}
}
