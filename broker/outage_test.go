package broker_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/pgtest"
	"github.com/socialbroker/broker/storage"
)

// With the database stopped, token calls answer 503 with Retry-After and
// leave the cookie alone (never a 401 for an infrastructure failure); the
// JWKS and discovery keep answering; everything works once it is back.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	cl := pgtest.NewCluster(t)
	ctx := context.Background()
	if err := cl.CreateDatabase(ctx, "broker"); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(ctx, cl.URL("broker"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
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
