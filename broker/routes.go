package broker

import (
	"net/http"
	"strings"

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
	mux.Handle("POST /auth/callback/{provider}", s.page(s.formPostCallback)) // form_post providers only (Apple)
	mux.Handle("GET /auth/signup", s.page(s.signupForm))
	mux.Handle("POST /auth/signup", s.page(s.signupSubmit))

	// API (errors are JSON).
	mux.Handle("POST /auth/token", s.api(s.limited(s.limits.token, s.token)))
	mux.Handle("POST /auth/logout", s.api(s.logout))
	mux.Handle("GET /auth/me", s.api(s.me))
	mux.Handle("DELETE /auth/me", s.api(s.deleteMe))
	mux.Handle("DELETE /auth/identities/{provider}", s.api(s.unlinkIdentity))
	mux.Handle("GET /auth/sessions", s.api(s.listSessions))
	mux.Handle("DELETE /auth/sessions/{id}", s.api(s.revokeSession))
	mux.Handle("POST /auth/webhooks/kakao/unlink", s.api(s.providerNotification)) // read by the kakao preset
	mux.Handle("GET /auth/webhooks/kakao/unlink", s.api(s.providerNotification))
	mux.Handle("POST /auth/webhooks/apple/{name}", s.api(s.providerNotification)) // read by the apple preset

	// Public documents, served from memory.
	mux.HandleFunc("GET /.well-known/jwks.json", s.jwks)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.openidConfiguration)

	// Operations. With admin.listen set, /metrics is served there only
	// (AdminHandler).
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Admin.Listen == "" {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}

	// Assets and the demo frontend.
	mux.Handle("GET /static/", http.StripPrefix("/static/", s.pages.Static()))
	if s.cfg.Demo { // demo: true (broker-dev sets it)
		mux.Handle("GET /demo/", web.Demo())
	}

	return s.closeWhenDraining(s.secure(s.observe(s.cors(s.unrouted(mux)))))
}

// AdminHandler returns the operators' routes, served on admin.listen only:
// the admin API (every request needs an admin key) and /metrics.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /admin/users", s.admin(s.adminUsers))
	mux.Handle("GET /admin/users/{id}", s.admin(s.adminUser))
	mux.Handle("POST /admin/users/{id}/disable", s.admin(s.adminDisable))
	mux.Handle("POST /admin/users/{id}/enable", s.admin(s.adminEnable))
	mux.Handle("DELETE /admin/users/{id}/sessions", s.admin(s.adminRevokeSessions))
	mux.Handle("DELETE /admin/users/{id}", s.admin(s.adminDeleteUser))
	mux.Handle("GET /admin/audit", s.admin(s.adminAudit))
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.Handle("/", s.admin(func(w http.ResponseWriter, r *http.Request) error {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Description: "No such endpoint."}
	}))
	return s.secure(s.observe(mux))
}

// apiPrefixes are the paths whose errors are JSON, including the answers
// to paths and methods no route serves.
var apiPrefixes = []string{"/auth/token", "/auth/logout", "/auth/me", "/auth/identities", "/auth/sessions", "/auth/webhooks"}

// unrouted answers requests no route serves in the surface's own format:
// JSON under the API paths, the error page elsewhere. The mux still tells
// 404 from 405 and names the allowed methods.
func (s *Server) unrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status != http.StatusNotFound && probe.status != http.StatusMethodNotAllowed {
			mux.ServeHTTP(w, r) // the mux's redirects to a cleaned path
			return
		}
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		code, desc := codeNotFound, "No such endpoint."
		if probe.status == http.StatusMethodNotAllowed {
			code, desc = codeMethodNotAllowed, "This endpoint does not accept this method; see the Allow header."
		}
		// Not logged as failures (scanners ask for anything); the request
		// log and the metrics still count them.
		for _, p := range apiPrefixes {
			if r.URL.Path == p || strings.HasPrefix(r.URL.Path, p+"/") {
				writeJSON(w, probe.status, map[string]string{"error": string(code), "error_description": desc})
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		s.pages.Error(w, r, probe.status, string(code))
	})
}

// statusProbe records the status and headers a handler would answer with
// and discards its body.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }

func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}

func (p *statusProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
