package broker

import (
	"errors"
	"net/http"

	"github.com/socialbroker/broker/storage"
)

// logout is POST /auth/logout: it revokes the session of the presented
// refresh token (all the user's sessions with all=true) and clears the
// cookie. It answers 204 whether or not the token was known.
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
	for _, raw := range raws {
		tok, err := decodeToken(raw)
		if err != nil {
			continue
		}
		sess, err := s.store.SessionByToken(r.Context(), hashToken(tok))
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		now := s.now()
		if all && sess.RevokedAt == nil {
			if _, err := s.store.RevokeUserSessions(r.Context(), sess.UserID, now, "logout_all"); err != nil {
				return err
			}
		} else if err := s.store.RevokeSession(r.Context(), sess.ID, now, "logout"); err != nil {
			return err
		}
	}
	s.clearRefreshCookie(w)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
