package broker_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/internal/pglocal"
	"github.com/socialbroker/broker/internal/pgtest"
	"github.com/socialbroker/broker/storage"
)

// With the database stopped, token calls answer 503 with Retry-After and
// leave the cookie alone (never a 401 for an infrastructure failure); the
// JWKS and discovery keep answering; everything works once it is back.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	cl := migratedCluster(t)
	ctx := context.Background()
	env := brokertest.New(t, brokertest.Options{DatabaseURL: cl.URL("broker")})
	tok, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	c := &http.Client{}

	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	r := do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
	wantStatus(t, r, 503)
	if b := r.json(t); b.Error != "temporarily_unavailable" {
		t.Fatalf("error = %q, want temporarily_unavailable", b.Error)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if r.cookie("refresh_token") != nil {
		t.Fatal("an outage touched the refresh cookie")
	}
	wantStatus(t, do(t, c, "POST", env.URL+"/auth/logout", nil, withCookie(tok)), 503)
	wantStatus(t, do(t, c, "GET", env.URL+"/readyz", nil, nil), 503)
	wantStatus(t, do(t, c, "GET", env.URL+"/.well-known/jwks.json", nil, nil), 200)
	wantStatus(t, do(t, c, "GET", env.URL+"/.well-known/openid-configuration", nil, nil), 200)
	if err := env.Keys.Refresh(ctx); err == nil {
		t.Fatal("key refresh succeeded with the database down")
	}
	wantStatus(t, do(t, c, "GET", env.URL+"/.well-known/jwks.json", nil, nil), 200)

	if err := cl.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	r = do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
	wantStatus(t, r, 200)
	wantStatus(t, do(t, c, "GET", env.URL+"/readyz", nil, nil), 200)
}

// A database lost between the provider's consent and the callback: a 503
// page with Retry-After, nothing half-written, and logins work once it is
// back.
func TestDatabaseLostMidCallback(t *testing.T) {
	t.Parallel()
	cl := migratedCluster(t)
	ctx := context.Background()
	env := brokertest.New(t, brokertest.Options{DatabaseURL: cl.URL("broker"), Providers: []string{"google"}, Signup: "auto"})
	c := env.Client()
	cb := approve(t, env, "google", startLogin(t, env, c, "google", ""))
	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	r := do(t, c, "GET", cb, nil, nil)
	wantStatus(t, r, 503)
	if r.Header.Get("Retry-After") == "" || r.cookie("refresh_token") != nil {
		t.Fatalf("503 page: Retry-After %q, refresh cookie %v", r.Header.Get("Retry-After"), r.cookie("refresh_token"))
	}
	if err := cl.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if u, s := countRows(t, env, "users"), countRows(t, env, "sessions"); u != 0 || s != 0 {
		t.Fatalf("after the outage: %d users, %d sessions; want none", u, s)
	}
	loginAs(t, env, env.Client(), "google", "")
	if u := countRows(t, env, "users"); u != 1 {
		t.Fatalf("users after recovery = %d, want 1", u)
	}
}

// With every database connection taken, a request fails fast with 503
// instead of queueing forever, and works once connections are free.
func TestPoolExhaustionFailsFast(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}})
	tok, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	ctx := context.Background()
	pool := env.Store.Pool()
	var held []*pgxpool.Conn
	for i := int32(0); i < pool.Config().MaxConns; i++ {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	start := time.Now()
	r := do(t, &http.Client{}, "POST", env.URL+"/auth/token", nil, withCookie(tok))
	wantStatus(t, r, 503)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("an exhausted pool answered after %v", d)
	}
	if r.Header.Get("Retry-After") == "" || r.cookie("refresh_token") != nil {
		t.Fatal("503 without Retry-After, or with the cookie touched")
	}
	for _, c := range held {
		c.Release()
	}
	wantStatus(t, do(t, &http.Client{}, "POST", env.URL+"/auth/token", nil, withCookie(tok)), 200)
}

// migratedCluster starts a cluster of the test's own (so that it can be
// stopped) with a migrated database "broker".
func migratedCluster(t *testing.T) *pglocal.Cluster {
	t.Helper()
	cl := pgtest.NewCluster(t)
	ctx := context.Background()
	if err := cl.CreateDatabase(ctx, "broker"); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(ctx, cl.URL("broker"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return cl
}

// killBackends terminates every connection the broker holds to its
// database, every interval, until ctx is done; the channel then yields how
// many it terminated. Its own session runs on a connection of its own.
func killBackends(ctx context.Context, t *testing.T, env *brokertest.Env, every time.Duration) <-chan int {
	t.Helper()
	admin, err := pgx.Connect(context.Background(), env.Config.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan int, 1)
	go func() {
		defer admin.Close(context.Background())
		total := 0
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				out <- total
				return
			case <-tick.C:
			}
			var n int
			err := admin.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
				FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
			if err != nil {
				t.Errorf("terminating backends: %v", err)
				out <- total
				return
			}
			total += n
		}
	}()
	return out
}

// refreshOnce posts a refresh token and reports the status, the rotated
// token (if any) and whether a 503 carried Retry-After. It is safe to call
// from any goroutine.
func refreshOnce(c *http.Client, base, tok string) (status int, next string, retryAfter bool, err error) {
	req, _ := http.NewRequest("POST", base+"/auth/token", nil)
	req.Header.Set("Cookie", "refresh_token="+tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.Name == "refresh_token" {
			next = ck.Value
		}
	}
	return resp.StatusCode, next, resp.Header.Get("Retry-After") != "", nil
}

// Connections killed while refresh tokens rotate: every answer is a 200 or
// a 503 with Retry-After that leaves the cookie alone, and a client that
// keeps its cookie after a 503 is never mistaken for a thief, even when the
// rotation had committed before its connection died. Afterwards every
// session works and holds exactly one live token.
func TestConnectionsKilledMidRotation(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"},
		Extra: "limits:\n  per_minute: { login: 0, callback: 0, token: 0 }\n"})
	const clients = 6
	toks := make([]string, clients)
	for i := range toks {
		toks[i], _ = env.NewSession(t, env.NewUser(t, "kakao", fmt.Sprint(i+1)))
	}
	ctx, stop := context.WithCancel(context.Background())
	killed := killBackends(ctx, t, env, 100*time.Millisecond)
	var ok, unavailable atomic.Int64
	var wg sync.WaitGroup
	// A kill can land between requests (the store retries the rotation on
	// a fresh connection) or inside one whose retry is killed too (503).
	deadline := time.Now().Add(4 * time.Second)
	going := func() bool { return time.Now().Before(deadline) }
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 20 * time.Second}
			for going() {
				status, next, retryAfter, err := refreshOnce(c, env.URL, toks[i])
				switch {
				case err != nil:
					t.Errorf("client %d: %v", i, err)
					return
				case status == 200 && next != "":
					ok.Add(1)
					toks[i] = next
				case status == 503 && retryAfter && next == "":
					unavailable.Add(1)
				default:
					t.Errorf("client %d: status %d (Retry-After %v, new cookie %v); want 200 or 503 with Retry-After and the cookie kept", i, status, retryAfter, next != "")
					return
				}
			}
		}()
	}
	wg.Wait()
	stop()
	n := <-killed
	t.Logf("%d connections terminated; %d rotations, %d answered 503", n, ok.Load(), unavailable.Load())
	if n == 0 || ok.Load() == 0 {
		t.Fatalf("the storm did not run: %d killed, %d rotated", n, ok.Load())
	}
	c := &http.Client{}
	for i, tok := range toks {
		status, next, _, err := refreshOnce(c, env.URL, tok)
		if err != nil || status != 200 || next == "" {
			t.Fatalf("client %d after the storm: status %d, err %v", i, status, err)
		}
	}
	var revoked, badFamilies int
	pool := env.Store.Pool()
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL`).Scan(&revoked); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM (SELECT session_id FROM refresh_tokens GROUP BY session_id
		HAVING count(*) FILTER (WHERE rotated_at IS NULL) <> 1) f`).Scan(&badFamilies); err != nil {
		t.Fatal(err)
	}
	if revoked != 0 || badFamilies != 0 {
		t.Fatalf("after the storm: %d sessions revoked, %d sessions without exactly one live token", revoked, badFamilies)
	}
}

// Connections killed while callbacks create users and sessions: every
// callback ends in a 303 with a working refresh cookie or a 503 page with
// Retry-After and no cookie; no user is left without an identity and every
// identity has its user.
func TestConnectionsKilledMidCallback(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"google"}, Signup: "auto",
		Extra: "limits:\n  per_minute: { login: 0, callback: 0, token: 0 }\n"})
	em := env.Emulators["google"]
	ctx, stop := context.WithCancel(context.Background())
	killed := killBackends(ctx, t, env, 100*time.Millisecond)
	var signedIn []*http.Client
	var subjects []string
	unavailable := 0
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		sub := fmt.Sprintf("killed-mid-callback-%d", i%20) // new users first, then returning ones
		em.SetUser(fakeidp.User{Subject: sub, Email: sub + "@gmail.example", EmailVerified: true})
		c := env.Client()
		cb := approve(t, env, "google", startLogin(t, env, c, "google", ""))
		r := do(t, c, "GET", cb, nil, nil)
		switch {
		case r.StatusCode == 303 && r.cookie("refresh_token") != nil:
			signedIn = append(signedIn, c)
			subjects = append(subjects, sub)
		case r.StatusCode == 503 && r.Header.Get("Retry-After") != "" && r.cookie("refresh_token") == nil:
			unavailable++
		default:
			t.Fatalf("callback %d: status %d, Retry-After %q, cookie %v; want 303 with a cookie or 503 with Retry-After",
				i, r.StatusCode, r.Header.Get("Retry-After"), r.cookie("refresh_token"))
		}
	}
	stop()
	n := <-killed
	t.Logf("%d connections terminated; %d logins, %d answered 503", n, len(signedIn), unavailable)
	if n == 0 || len(signedIn) == 0 {
		t.Fatalf("the storm did not run: %d killed, %d signed in", n, len(signedIn))
	}
	for i, c := range signedIn {
		wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, nil), 200)
		var linked int
		if err := env.Store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM identities WHERE provider = 'google' AND subject = $1`, subjects[i]).Scan(&linked); err != nil || linked != 1 {
			t.Fatalf("login %d: %d identities for its subject (%v)", i, linked, err)
		}
	}
	var orphans, users, idents int
	if err := env.Store.Pool().QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id)),
		(SELECT count(*) FROM users), (SELECT count(*) FROM identities)`).Scan(&orphans, &users, &idents); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 || users != idents {
		t.Fatalf("%d users without an identity; %d users, %d identities", orphans, users, idents)
	}
	loginAs(t, env, env.Client(), "google", "") // the honest path after the storm
}
