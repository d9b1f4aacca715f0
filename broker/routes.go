package broker

import (
	"net/http"

	"github.com/socialbroker/broker/internal/web"
)

// Handler returns the broker's routes with its middleware. Every route is
// listed here.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()

	// Browser pages (errors render the HTML error page).
	mux.Handle("GET /{$}", s.page(s.loginPage))
	mux.Handle("GET /auth/login", s.page(s.loginPage))
	mux.Handle("GET /auth/login/{provider}", s.page(s.loginStart))
	mux.Handle("GET /auth/link/{provider}", s.page(s.linkStart))
	mux.Handle("GET /auth/callback/{provider}", s.page(s.callback))
	mux.Handle("GET /auth/signup", s.page(s.signupForm))
	mux.Handle("POST /auth/signup", s.page(s.signupSubmit))

	// API (errors are JSON).
	mux.Handle("POST /auth/token", s.api(s.limited(s.limits.token, s.token)))
	mux.Handle("POST /auth/logout", s.api(s.logout))
	mux.Handle("GET /auth/me", s.api(s.me))
	mux.Handle("DELETE /auth/me", s.api(s.deleteMe))
	mux.Handle("DELETE /auth/identities/{provider}", s.api(s.unlinkIdentity))
	mux.Handle("POST /auth/webhooks/kakao/unlink", s.api(s.kakaoUnlink))
	mux.Handle("GET /auth/webhooks/kakao/unlink", s.api(s.kakaoUnlink))

	// Public documents, served from memory.
	mux.HandleFunc("GET /.well-known/jwks.json", s.jwks)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.openidConfiguration)

	// Operations.
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.Handler())

	// Assets and the demo frontend.
	mux.Handle("GET /static/", http.StripPrefix("/static/", web.Static()))
	mux.Handle("GET /demo/", web.Demo())

	return s.secure(s.observe(s.cors(mux)))
}
