package broker_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/socialbroker/broker/broker/brokertest"
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
