package broker

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/socialbroker/broker/internal/ratelimit"
	"github.com/socialbroker/broker/storage"
)

// statusWriter records the status code and body size for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe gives every request its id (echoed as X-Request-Id), its actor
// for audit rows, and one access log line and metric by route pattern.
// Query strings and cookies are never logged: they carry codes, states
// and tokens.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := s.requestID(r)
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		// The request the mux fills Pattern in.
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		r = r.WithContext(storage.WithActor(ctx, storage.Actor{
			IP: ratelimit.ClientAddr(r, s.cfg.Limits.TrustedProxies), UserAgent: clip(r.UserAgent(), maxUserAgent),
		}))
		defer func() {
			if p := recover(); p != nil {
				s.log.ErrorContext(r.Context(), "panic serving request", "route", r.Pattern, "panic", p)
				if sw.status == 0 {
					writeJSON(sw, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "Something went wrong on our side."})
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			d := time.Since(start)
			s.metrics.observe(route, sw.status, d)
			s.log.InfoContext(r.Context(), "http request", "method", r.Method, "route", route, "status", sw.status,
				"duration_ms", float64(d.Microseconds())/1000, "bytes", sw.bytes)
		}()
		next.ServeHTTP(sw, r)
	})
}

// maxUserAgent bounds the user agent kept in the audit log.
const maxUserAgent = 512

// clip returns at most n bytes of s, cut at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// secure sets headers every response carries. The values are built once
// and assigned as canonical keys (no per-request canonicalisation).
func (s *Server) secure(next http.Handler) http.Handler {
	fixed := http.Header{
		"X-Content-Type-Options":  {"nosniff"},
		"Referrer-Policy":         {"no-referrer"},
		"X-Frame-Options":         {"DENY"},
		"Content-Security-Policy": {"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"},
	}
	if strings.HasPrefix(s.cfg.Issuer, "https://") {
		fixed["Strict-Transport-Security"] = []string{"max-age=63072000; includeSubDomains"}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range fixed {
			h[k] = v
		}
		next.ServeHTTP(w, r)
	})
}

// allowedOrigin reports whether a browser origin may call the API with
// credentials: the broker's own origin or one in cors.allowed_origins.
func (s *Server) allowedOrigin(origin string) bool {
	if strings.EqualFold(origin, s.origin) {
		return true
	}
	for _, o := range s.cfg.CORS.AllowedOrigins {
		if strings.EqualFold(origin, o) {
			return true
		}
	}
	return false
}

// cors answers preflights and names allowed origins (only) on API routes
// and the well-known documents.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !(strings.HasPrefix(r.URL.Path, "/auth/") || strings.HasPrefix(r.URL.Path, "/.well-known/")) {
			next.ServeHTTP(w, r)
			return
		}
		// Every answer here may differ by Origin, including one to a request
		// without it: shared caches (the JWKS and discovery are public) must
		// not hand it to a request with another Origin.
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		allowed := s.allowedOrigin(origin)
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkOrigin refuses cookie-authenticated POSTs from foreign origins.
//
// Our pages carry Referrer-Policy: no-referrer, under which browsers send
// `Origin: null` even for a same-origin form post (the signup form). Such a
// request is recognised by the browser's own Sec-Fetch-Site: same-origin,
// which pages cannot forge; a bare `null` (sandboxed frames, data: URLs)
// stays refused.
func (s *Server) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" || s.allowedOrigin(origin) {
		return nil
	}
	if origin == "null" && r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return nil
	}
	return &apiError{Status: http.StatusForbidden, Code: codeInvalidOrigin,
		Description: "Requests from this origin are not allowed."}
}

// limit applies a per-client rate limit; it answers 429 with Retry-After.
func (s *Server) limit(l *ratelimit.Limiter, r *http.Request, w http.ResponseWriter) bool {
	ok, retry := l.Allow(ratelimit.ClientAddr(r, s.cfg.Limits.TrustedProxies), s.now())
	if !ok {
		setRetryAfter(w.Header(), retry+time.Second) // rounded up
	}
	return ok
}

// limited wraps an API handler with a rate limit.
func (s *Server) limited(l *ratelimit.Limiter, h apiHandler) apiHandler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !s.limit(l, r, w) {
			return &apiError{Status: http.StatusTooManyRequests, Code: codeRateLimited,
				Description: "Too many requests. Try again later."}
		}
		return h(w, r)
	}
}
