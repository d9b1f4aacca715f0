package broker

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

func discoveryDocument(issuer string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              issuer + "/.well-known/jwks.json",
		"authorization_endpoint":                issuer + "/auth/login",
		"token_endpoint":                        issuer + "/auth/token",
		"userinfo_endpoint":                     issuer + "/auth/me",
		"end_session_endpoint":                  issuer + "/auth/logout",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"grant_types_supported":                 []string{"refresh_token", grantTokenExchange},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
	})
}

// jwks is GET /.well-known/jwks.json, from memory: it keeps answering while
// the database is down.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	body, etag := s.keys.JWKS()
	h := w.Header()
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(s.cfg.Keys.JWKSMaxAge/time.Second)))
	h.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

func etagMatch(header, etag string) bool {
	for header != "" {
		var tag string
		i := 0
		for i < len(header) && (header[i] == ' ' || header[i] == ',') {
			i++
		}
		header = header[i:]
		j := 0
		for j < len(header) && header[j] != ',' {
			j++
		}
		tag, header = header[:j], header[j:]
		for len(tag) > 0 && tag[len(tag)-1] == ' ' {
			tag = tag[:len(tag)-1]
		}
		if tag == "*" || tag == etag || tag == "W/"+etag {
			return true
		}
	}
	return false
}

// openidConfiguration is GET /.well-known/openid-configuration.
func (s *Server) openidConfiguration(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(s.discovery)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// readyz answers 200 when the database answers and a signing key is loaded,
// and 503 once the server drains (see Drain).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, body := http.StatusOK, map[string]string{"database": "ok", "signing_key": "ok"}
	if err := s.store.Ping(ctx); err != nil {
		status, body["database"] = http.StatusServiceUnavailable, "unavailable"
	}
	if _, err := s.keys.Active(); err != nil {
		status, body["signing_key"] = http.StatusServiceUnavailable, "none"
	}
	writeJSON(w, status, body)
}
