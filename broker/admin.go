package broker

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/socialbroker/broker/storage"
)

// The admin API (contract §11) is served on admin.listen only. Every
// request carries Authorization: Bearer <admin key>; keys are made with
// `broker admin keys create` and stored as SHA-256 hashes, so a lookup by
// hash compares nothing secret byte by byte.

// adminKeyPrefix starts every admin key, so that one found in a log or a
// repository is recognisable.
const adminKeyPrefix = "bka_"

// NewAdminKey returns a fresh admin key and the hash the store keeps.
func NewAdminKey() (key string, hash []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	key = adminKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, HashAdminKey(key)
}

// HashAdminKey is what the store keeps of an admin key.
func HashAdminKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// admin authenticates an admin API request by its key and runs h with the
// actor admin:NAME. A missing, wrong or revoked key gets one and the same
// 401.
func (s *Server) admin(h apiHandler) http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		name := ""
		if ok && strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(key, adminKeyPrefix) && len(key) < 128 {
			var err error
			name, err = s.store.AdminKeyName(r.Context(), HashAdminKey(key))
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
		}
		if name == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="admin"`)
			return &apiError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "A valid admin key is required."}
		}
		a := storage.ActorOf(r.Context()) // the client observe recorded
		a.Name = "admin:" + name
		return h(w, r.WithContext(storage.WithActor(r.Context(), a)))
	})
}

type adminIdentity struct {
	Provider string    `json:"provider"`
	Subject  string    `json:"subject"`
	Email    string    `json:"email,omitempty"`
	LinkedAt time.Time `json:"linked_at"`
}

type adminDisabled struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

type adminUser struct {
	ID         string            `json:"id"`
	CreatedAt  time.Time         `json:"created_at"`
	Profile    map[string]string `json:"profile"`
	Disabled   *adminDisabled    `json:"disabled"`
	Identities []adminIdentity   `json:"identities"`
	Sessions   []sessionView     `json:"sessions,omitempty"`
}

func viewAdminUser(u storage.User, idents []storage.Identity) adminUser {
	v := adminUser{ID: u.ID, CreatedAt: u.CreatedAt.UTC(), Profile: u.Profile, Identities: make([]adminIdentity, 0, len(idents))}
	if u.DisabledAt != nil {
		v.Disabled = &adminDisabled{Reason: u.DisabledReason, At: u.DisabledAt.UTC()}
	}
	for _, i := range idents {
		v.Identities = append(v.Identities, adminIdentity{Provider: i.Provider, Subject: i.Subject, Email: i.Profile["email"], LinkedAt: i.LinkedAt.UTC()})
	}
	return v
}

// pageLimit reads limit (default 50, at most 500).
func pageLimit(r *http.Request) (int, error) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 500 {
		return 0, errBadRequest("invalid_request", "limit must be 1 to 500.")
	}
	return n, nil
}

// adminUsers is GET /admin/users: search by identity or email, in a stable
// order, a page at a time.
func (s *Server) adminUsers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	f := storage.UserFilter{Provider: q.Get("provider"), Subject: q.Get("subject"), Email: q.Get("email"), After: q.Get("cursor"), Limit: limit}
	if f.Subject != "" && f.Provider == "" {
		return errBadRequest("invalid_request", "subject needs provider.")
	}
	users, idents, err := s.store.ListUsers(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]adminUser, len(users))
	for i, u := range users {
		out[i] = viewAdminUser(u, idents[u.ID])
	}
	var next *string
	if len(users) == limit {
		next = &users[len(users)-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out, "next_cursor": next})
	return nil
}

func errNoUser(err error) error {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Description: "No such user.", Cause: err}
}

// adminUser is GET /admin/users/{id}: the user with identities and live
// sessions.
func (s *Server) adminUser(w http.ResponseWriter, r *http.Request) error {
	u, idents, err := s.store.User(r.Context(), r.PathValue("id"))
	if errors.Is(err, storage.ErrNotFound) {
		return errNoUser(err)
	}
	if err != nil {
		return err
	}
	sessions, err := s.store.UserSessions(r.Context(), u.ID, s.now(), s.cfg.Tokens.RefreshIdleTTL)
	if err != nil {
		return err
	}
	v := viewAdminUser(u, idents)
	v.Sessions = make([]sessionView, len(sessions))
	for i, x := range sessions {
		v.Sessions[i] = viewSession(x, "")
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// adminDisable is POST /admin/users/{id}/disable with {"reason"}: every
// session is revoked at once, and no login or exchange succeeds until the
// user is enabled.
func (s *Server) adminDisable(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Reason string `json:"reason"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Reason) > 500 {
		return errBadRequest("invalid_request", `The body must be {"reason": "…"} (at most 500 bytes).`)
	}
	return s.adminUserChange(w, r, s.store.DisableUser(r.Context(), r.PathValue("id"), body.Reason, s.now()))
}

// adminEnable is POST /admin/users/{id}/enable.
func (s *Server) adminEnable(w http.ResponseWriter, r *http.Request) error {
	return s.adminUserChange(w, r, s.store.EnableUser(r.Context(), r.PathValue("id"), s.now()))
}

// adminUserChange answers a disable or enable with the user as it is now.
func (s *Server) adminUserChange(w http.ResponseWriter, r *http.Request, err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return errNoUser(err)
	}
	if err != nil {
		return err
	}
	u, idents, err := s.store.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewAdminUser(u, idents))
	return nil
}

// adminRevokeSessions is DELETE /admin/users/{id}/sessions.
func (s *Server) adminRevokeSessions(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, _, err := s.store.User(r.Context(), id); errors.Is(err, storage.ErrNotFound) {
		return errNoUser(err)
	} else if err != nil {
		return err
	}
	if _, err := s.store.RevokeUserSessions(r.Context(), id, s.now(), "admin"); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// adminDeleteUser is DELETE /admin/users/{id}: exactly the self-deletion
// path (provider grants revoked through the outbox, events), reason admin.
func (s *Server) adminDeleteUser(w http.ResponseWriter, r *http.Request) error {
	err := s.store.DeleteUser(r.Context(), r.PathValue("id"), s.now(), "admin")
	if errors.Is(err, storage.ErrNotFound) {
		return errNoUser(err)
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "user deleted", "user_id", r.PathValue("id"), "reason", "admin", "actor", storage.ActorOf(r.Context()).Name)
	s.kickRevocations()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type auditView struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	Type      string    `json:"type"`
	UserID    string    `json:"user_id"`
	SessionID string    `json:"session_id"`
	Provider  string    `json:"provider"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	Actor     string    `json:"actor"`
	Detail    string    `json:"detail,omitempty"`
}

// adminAudit is GET /admin/audit: the audit log, newest first, filtered by
// user and type, a page at a time.
func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	f := storage.AuditFilter{UserID: q.Get("user_id"), Type: q.Get("type"), Limit: limit}
	if c := q.Get("cursor"); c != "" {
		if f.Before, err = strconv.ParseInt(c, 10, 64); err != nil || f.Before < 1 {
			return errBadRequest("invalid_request", "cursor is not one this API gave.")
		}
	}
	rows, err := s.store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]auditView, len(rows))
	for i, e := range rows {
		out[i] = auditView{ID: strconv.FormatInt(e.ID, 10), At: e.At.UTC(), Type: e.Type, UserID: e.UserID, SessionID: e.SessionID,
			Provider: e.Provider, IP: e.IP, UserAgent: e.UserAgent, Actor: e.Actor, Detail: e.Detail}
	}
	var next *string
	if len(rows) == limit {
		c := out[len(out)-1].ID
		next = &c
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "next_cursor": next})
	return nil
}
