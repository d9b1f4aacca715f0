package broker

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/socialbroker/broker/storage"
)

func errInvalidToken(cause error) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: codeInvalidToken,
		Description: "The access token is missing, invalid or expired.", Cause: cause}
}

// bearer authenticates a request by its access token and checks that the
// user and the session still exist: a deleted user or a revoked session
// makes earlier access tokens worthless here.
func (s *Server) bearer(r *http.Request) (accessClaims, error) {
	h := r.Header.Get("Authorization")
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return accessClaims{}, errInvalidToken(errors.New("no bearer token"))
	}
	c, err := s.verifyAccessToken(strings.TrimSpace(raw))
	if err != nil {
		return c, errInvalidToken(err)
	}
	sess, err := s.store.Session(r.Context(), c.Sid)
	if errors.Is(err, storage.ErrNotFound) {
		return c, errInvalidToken(errors.New("session gone"))
	}
	if err != nil {
		return c, err
	}
	if sess.RevokedAt != nil || sess.UserID != c.Sub {
		return c, errInvalidToken(errors.New("session revoked"))
	}
	return c, nil
}

type meIdentity struct {
	Provider string    `json:"provider"`
	LinkedAt time.Time `json:"linked_at"`
}

type meResponse struct {
	Sub        string            `json:"sub"`
	Profile    map[string]string `json:"profile"`
	Identities []meIdentity      `json:"identities"`
	Terms      []meTerm          `json:"terms"`
}

// me is GET /auth/me.
func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	c, err := s.bearer(r)
	if err != nil {
		return err
	}
	u, idents, err := s.store.User(r.Context(), c.Sub)
	if errors.Is(err, storage.ErrNotFound) {
		return errInvalidToken(errors.New("user gone"))
	}
	if err != nil {
		return err
	}
	terms, err := s.store.Terms(r.Context(), c.Sub)
	if err != nil {
		return err
	}
	resp := meResponse{Sub: u.ID, Profile: u.Profile, Identities: make([]meIdentity, 0, len(idents)), Terms: meTerms(terms)}
	for _, i := range idents {
		resp.Identities = append(resp.Identities, meIdentity{Provider: i.Provider, LinkedAt: i.LinkedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
