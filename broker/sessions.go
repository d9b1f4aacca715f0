package broker

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/socialbroker/broker/storage"
)

// sessionView is one entry of GET /auth/sessions (and the admin API's user).
type sessionView struct {
	ID         string        `json:"id"`
	CreatedAt  time.Time     `json:"created_at"`
	LastUsedAt time.Time     `json:"last_used_at"`
	ExpiresAt  time.Time     `json:"expires_at"`
	IDP        string        `json:"idp"`
	Kind       string        `json:"kind"`
	UserAgent  userAgentView `json:"user_agent"`
	IP         string        `json:"ip"`
	Current    bool          `json:"current"`
}

type userAgentView struct {
	Raw     string `json:"raw"`
	Browser string `json:"browser"`
	OS      string `json:"os"`
}

func viewSession(x storage.Session, current string) sessionView {
	browser, os := parseUserAgent(x.UserAgent)
	return sessionView{
		ID: x.ID, CreatedAt: x.CreatedAt.UTC(), LastUsedAt: x.LastUsedAt.UTC(), ExpiresAt: x.ExpiresAt.UTC(),
		IDP: x.IDP, Kind: x.Kind, UserAgent: userAgentView{Raw: x.UserAgent, Browser: browser, OS: os},
		IP: x.IP, Current: x.ID == current,
	}
}

// listSessions is GET /auth/sessions: the presenting user's live sessions,
// newest first; current marks the session of the access token.
func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	c, err := s.bearer(r)
	if err != nil {
		return err
	}
	list, err := s.store.UserSessions(r.Context(), c.Sub, s.now(), s.cfg.Tokens.RefreshIdleTTL)
	if err != nil {
		return err
	}
	out := make([]sessionView, len(list))
	for i, x := range list {
		out[i] = viewSession(x, c.Sid)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

// revokeSession is DELETE /auth/sessions/{id}: the user signs one of their
// own sessions out. Another user's session, or none: 404, nothing revoked.
func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) error {
	c, err := s.bearer(r)
	if err != nil {
		return err
	}
	err = s.store.RevokeOwnSession(r.Context(), c.Sub, r.PathValue("id"), s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Description: "No such session.", Cause: err}
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseUserAgent names the browser and operating system of a User-Agent
// header, coarsely: the family only, no versions. It is shown to a user
// recognising their own devices ("Chrome on Android"), where a family is
// what they need; the raw header stays beside it. Full parsers keep large
// regex tables current with every release, which buys nothing here.
// Order matters: in-app browsers and Chromium derivatives also say
// "Chrome" and "Safari".
func parseUserAgent(ua string) (browser, os string) {
	has := func(s string) bool { return strings.Contains(ua, s) }
	switch {
	case has("KAKAOTALK"):
		browser = "KakaoTalk"
	case has("NAVER(inapp"):
		browser = "NAVER app"
	case has("Whale/"):
		browser = "Whale"
	case has("SamsungBrowser/"):
		browser = "Samsung Internet"
	case has("Edg/"), has("EdgA/"), has("EdgiOS/"):
		browser = "Edge"
	case has("OPR/"), has("Opera"):
		browser = "Opera"
	case has("Firefox/"), has("FxiOS/"):
		browser = "Firefox"
	case has("CriOS/"), has("Chrome/"):
		browser = "Chrome"
	case has("Safari/") && has("Version/"):
		browser = "Safari"
	case ua == "":
		browser = ""
	default:
		browser = "Other"
	}
	switch {
	case has("iPhone"), has("iPad"), has("iPod"):
		os = "iOS"
	case has("Android"):
		os = "Android"
	case has("Windows"):
		os = "Windows"
	case has("Mac OS X"), has("Macintosh"):
		os = "macOS"
	case has("CrOS"):
		os = "ChromeOS"
	case has("Linux"):
		os = "Linux"
	case ua == "":
		os = ""
	default:
		os = "Other"
	}
	return browser, os
}
