package broker

import (
	"net/http"
	"time"
)

const (
	refreshCookie = "refresh_token"
	refreshPath   = "/auth"
)

// setRefreshCookie sets the refresh cookie for a session ending at expires
// (Max-Age = the session's remaining absolute lifetime).
func (s *Server) setRefreshCookie(w http.ResponseWriter, token string, expires time.Time) {
	maxAge := int(expires.Sub(s.now()) / time.Second)
	if maxAge < 1 {
		maxAge = 1
	}
	http.SetCookie(w, &http.Cookie{
		Name: refreshCookie, Value: token, Path: refreshPath, MaxAge: maxAge,
		HttpOnly: true, Secure: s.cfg.Cookies.Secure, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearRefreshCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: refreshCookie, Value: "", Path: refreshPath, MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.Cookies.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// cookieValues returns every value sent for a cookie name.
func cookieValues(r *http.Request, name string) []string {
	var vals []string
	for _, c := range r.CookiesNamed(name) {
		vals = append(vals, c.Value)
	}
	return vals
}
