package broker

import (
	"errors"
	"net/http"

	"github.com/socialbroker/broker/storage"
)

// logout is POST /auth/logout: it revokes the session of the presented
// refresh token (all the user's sessions with all=true) and clears the
// cookie. It answers 204 whether or not the token was known; an older
// generation of a session's token is a reuse: that session is revoked and
// the answer is 401, and it never ends the user's other sessions.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkOrigin(r); err != nil {
		return err
	}
	if r.URL.Query().Has("refresh_token") {
		return errBadRequest("invalid_request", "Tokens are not accepted in the URL.")
	}
	if err := parseForm(w, r); err != nil {
		return err
	}
	all := r.URL.Query().Get("all") == "true" || r.PostForm.Get("all") == "true"
	raws := r.PostForm["refresh_token"]
	if len(raws) == 0 {
		raws = cookieValues(r, refreshCookie)
	}
	s.clearRefreshCookie(w)
	w.Header().Set("Cache-Control", "no-store")
	reused := false
	for _, raw := range raws {
		sess, err := s.liveSession(r.Context(), raw)
		if err != nil {
			return err
		}
		now := s.now()
		switch {
		case sess.Outcome == storage.Reused:
			reused = true
		case sess.Outcome != storage.Live:
		case all:
			if _, err := s.store.RevokeUserSessions(r.Context(), sess.UserID, now, "logout_all"); err != nil {
				return err
			}
		default:
			if err := s.store.RevokeSession(r.Context(), sess.SessionID, now, "logout"); err != nil {
				return err
			}
		}
	}
	if reused {
		return errInvalidGrant(errors.New("logout with an old refresh token"))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
