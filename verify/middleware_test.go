package verify_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/socialbroker/broker/verify"
)

// serve runs one GET through h with the given Authorization header values.
func serve(h http.Handler, auth ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/orders?access_token=x", nil)
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	good := is.sign(t, stdHeader, is.claims())
	expired := is.sign(t, stdHeader, with(is.claims(), "exp", is.clock.Now().Add(-time.Minute).Unix()))
	cases := []struct {
		name      string
		realm     string
		auth      []string
		status    int
		challenge string // WWW-Authenticate; "" on success
	}{
		{"valid", "", []string{"Bearer " + good}, 200, ""},
		{"scheme in lower case", "", []string{"bearer " + good}, 200, ""},
		{"no Authorization (the query's access_token is ignored)", "", nil, 401, "Bearer"},
		{"no Authorization, with a realm", "api", nil, 401, `Bearer realm="api"`},
		{"Basic", "", []string{"Basic dTpw"}, 401, "Bearer"},
		{"Bearer without a token", "", []string{"Bearer"}, 401, "Bearer"},
		{"garbage", "", []string{"Bearer not-a-token"}, 401, `Bearer error="invalid_token"`},
		{"expired", "", []string{"Bearer " + expired}, 401, `Bearer error="invalid_token"`},
		{"expired, with a realm", `a "b"`, []string{"Bearer " + expired}, 401, `Bearer realm="a \"b\"", error="invalid_token"`},
		{"two Authorization headers", "", []string{"Bearer " + good, "Bearer " + good}, 400, `Bearer error="invalid_request"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := is.verifier(t, c.realm)
			var claims *verify.Claims
			h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				claims, _ = verify.ClaimsFrom(r.Context())
				w.WriteHeader(200)
			}))
			rec := serve(h, c.auth...)
			if rec.Code != c.status {
				t.Fatalf("status: got %d, want %d", rec.Code, c.status)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != c.challenge {
				t.Fatalf("WWW-Authenticate: got %q, want %q", got, c.challenge)
			}
			if c.status == 200 && (claims == nil || claims.Subject != "u1" || claims.SessionID != "s1") {
				t.Fatalf("claims in the context: got %+v, want sub u1, sid s1", claims)
			}
			if c.status != 200 {
				if claims != nil {
					t.Fatalf("handler ran with claims %+v, want not called", claims)
				}
				if got := rec.Header().Get("Cache-Control"); got != "no-store" {
					t.Fatalf("Cache-Control: got %q, want no-store", got)
				}
			}
		})
	}
	if c, ok := verify.ClaimsFrom(httptest.NewRequest("GET", "/", nil).Context()); ok || c != nil {
		t.Errorf("ClaimsFrom without the middleware: got %v, %v; want nil, false", c, ok)
	}
}
