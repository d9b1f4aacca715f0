package broker_test

import (
	"net/http"
	"testing"

	"github.com/socialbroker/broker/broker/brokertest"
)

// BenchmarkLoginRoundTrip is one whole login of a known user against the
// emulated OAuth2 provider: /auth/login/{provider} → consent → callback →
// POST /auth/token. Emulator time is included.
func BenchmarkLoginRoundTrip(b *testing.B) {
	env := brokertest.New(b, brokertest.Options{Providers: []string{"oauth2"}, Signup: "auto",
		Extra: "limits:\n  per_minute: { login: 0, callback: 0, token: 0 }\n"})
	em := env.Emulators["oauth2"]
	login := func() {
		c := env.Client()
		r, err := c.Get(env.URL + "/auth/login/oauth2")
		if err != nil || r.StatusCode != http.StatusFound {
			b.Fatalf("login start: %v %v", r, err)
		}
		r.Body.Close()
		cb, err := em.Approve(b.Context(), r.Header.Get("Location"))
		if err != nil {
			b.Fatal(err)
		}
		r, err = c.Get(cb.String())
		if err != nil || r.StatusCode != http.StatusSeeOther {
			b.Fatalf("callback: %v %v", r, err)
		}
		r.Body.Close()
		req, _ := http.NewRequest("POST", env.URL+"/auth/token", nil)
		r, err = c.Do(req)
		if err != nil || r.StatusCode != http.StatusOK {
			b.Fatalf("token: %v %v", r, err)
		}
		r.Body.Close()
	}
	login() // the user exists from here on
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		login()
	}
}
