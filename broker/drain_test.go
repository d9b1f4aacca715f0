package broker_test

import (
	"net/http"
	"testing"

	"github.com/socialbroker/broker/broker/brokertest"
)

func TestDrainTurnsReadyzOnly(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	c := &http.Client{}
	wantStatus(t, do(t, c, "GET", env.URL+"/readyz", nil, nil), 200)
	tok, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	env.Broker.Drain()
	if !env.Broker.Draining() {
		t.Fatal("Draining() = false after Drain")
	}
	r := do(t, c, "GET", env.URL+"/readyz", nil, nil)
	wantStatus(t, r, 503)
	if !r.Close {
		t.Error("draining /readyz keeps the connection")
	}
	// Everything else is still served while the balancer moves away.
	wantStatus(t, do(t, c, "GET", env.URL+"/healthz", nil, nil), 200)
	wantStatus(t, do(t, c, "GET", env.URL+"/.well-known/jwks.json", nil, nil), 200)
	r = do(t, c, "POST", env.URL+"/auth/token", nil, withCookie(tok))
	wantStatus(t, r, 200)
	if !r.Close {
		t.Error("a response while draining does not close its connection")
	}
}
