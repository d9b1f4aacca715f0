package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DisableUser disables a user and revokes every session at once
// (session.revoked user_disabled each, then user.disabled). Disabling a
// disabled user changes nothing. ErrNotFound for an unknown user.
func (s *Store) DisableUser(ctx context.Context, id, reason string, now time.Time) error {
	return s.txEvents(ctx, func(tx pgx.Tx) error {
		was, err := lockUser(ctx, tx, id)
		if err != nil || was != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET disabled_at = $2, disabled_reason = $3 WHERE id = $1`, id, now, reason); err != nil {
			return err
		}
		if _, err := revokeSessions(ctx, tx, now, "user_disabled", `s.user_id = $3`, id); err != nil {
			return err
		}
		if err := emit(ctx, tx, "user.disabled", map[string]any{"user_id": id, "reason": reason}, now); err != nil {
			return err
		}
		return audit(ctx, tx, AuditEntry{At: now, Type: "user_disabled", UserID: id})
	})
}

// lockUser locks a user's row for a change of its disabled state and
// returns that state (nil: enabled); ErrNotFound for an unknown user.
func lockUser(ctx context.Context, tx pgx.Tx, id string) (disabledAt *time.Time, err error) {
	err = tx.QueryRow(ctx, `SELECT disabled_at FROM users WHERE id = $1 FOR UPDATE`, id).Scan(&disabledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("user: %w", ErrNotFound)
	}
	return disabledAt, err
}

// EnableUser lets a disabled user sign in again. Enabling an enabled user
// changes nothing. ErrNotFound for an unknown user.
func (s *Store) EnableUser(ctx context.Context, id string, now time.Time) error {
	return s.txEvents(ctx, func(tx pgx.Tx) error {
		was, err := lockUser(ctx, tx, id)
		if err != nil || was == nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET disabled_at = NULL, disabled_reason = NULL WHERE id = $1`, id); err != nil {
			return err
		}
		if err := emit(ctx, tx, "user.enabled", map[string]any{"user_id": id}, now); err != nil {
			return err
		}
		return audit(ctx, tx, AuditEntry{At: now, Type: "user_enabled", UserID: id})
	})
}

// UserFilter selects users for the admin API; empty fields match all.
type UserFilter struct {
	Provider, Subject string // an identity (Subject needs Provider)
	Email             string // the profile email of the user or of one of its identities
	After             string // cursor: the last id of the previous page
	Limit             int
}

// ListUsers returns up to f.Limit users in id order after f.After, each
// with its identities. The order is stable: users created meanwhile never
// shift a page.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]User, map[string][]Identity, error) {
	var users []User
	idents := map[string][]Identity{}
	err := s.retry(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `
			SELECT u.id, u.profile, u.created_at, u.disabled_at, COALESCE(u.disabled_reason, '')
			FROM users u
			WHERE u.id > $1
			  AND ($2 = '' OR EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.provider = $2 AND ($3 = '' OR i.subject = $3)))
			  AND ($4 = '' OR lower(u.profile->>'email') = lower($4)
			       OR EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND lower(i.profile->>'email') = lower($4)))
			ORDER BY u.id LIMIT $5`, f.After, f.Provider, f.Subject, f.Email, f.Limit)
		if err != nil {
			return err
		}
		users, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) {
			var u User
			err := r.Scan(&u.ID, &u.Profile, &u.CreatedAt, &u.DisabledAt, &u.DisabledReason)
			return u, err
		})
		if err != nil || len(users) == 0 {
			return err
		}
		ids := make([]string, len(users))
		for i, u := range users {
			ids[i] = u.ID
		}
		rows, err = s.pool.Query(ctx, `
			SELECT provider, subject, user_id, profile, linked_at FROM identities
			WHERE user_id = ANY ($1) ORDER BY linked_at, provider`, ids)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Identity, error) {
			var i Identity
			err := r.Scan(&i.Provider, &i.Subject, &i.UserID, &i.Profile, &i.LinkedAt)
			return i, err
		})
		for _, i := range list {
			idents[i.UserID] = append(idents[i.UserID], i)
		}
		return err
	})
	return users, idents, err
}

// AuditFilter selects audit rows; empty fields match all.
type AuditFilter struct {
	UserID, Type string
	Before       int64 // cursor: the last id of the previous page (0: newest)
	Limit        int
}

// ListAudit returns audit rows newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.retry(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `
			SELECT id, at, type, COALESCE(user_id, ''), COALESCE(session_id, ''), COALESCE(provider, ''),
			       COALESCE(ip, ''), COALESCE(user_agent, ''), actor, COALESCE(detail, '')
			FROM audit_log
			WHERE ($1 = 0 OR id < $1) AND ($2 = '' OR user_id = $2) AND ($3 = '' OR type = $3)
			ORDER BY id DESC LIMIT $4`, f.Before, f.UserID, f.Type, f.Limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
			var e AuditEntry
			err := r.Scan(&e.ID, &e.At, &e.Type, &e.UserID, &e.SessionID, &e.Provider, &e.IP, &e.UserAgent, &e.Actor, &e.Detail)
			return e, err
		})
		return err
	})
	return out, err
}

// AdminKey is an admin API key's record (never the key itself).
type AdminKey struct {
	Name      string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// CreateAdminKey stores the hash of a new key. ErrConflict when the name
// is taken (revoked keys keep their name).
func (s *Store) CreateAdminKey(ctx context.Context, name string, hash []byte, now time.Time) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO admin_keys (name, hash, created_at) VALUES ($1, $2, $3)`, name, hash, now)
	return s.check(err)
}

// AdminKeyName returns the name of the live key with hash; ErrNotFound
// for an unknown or revoked key.
func (s *Store) AdminKeyName(ctx context.Context, hash []byte) (string, error) {
	var name string
	err := s.retry(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT name FROM admin_keys WHERE hash = $1 AND revoked_at IS NULL`, hash).Scan(&name)
	})
	return name, err
}

// AdminKeys lists every key, oldest first.
func (s *Store) AdminKeys(ctx context.Context) ([]AdminKey, error) {
	var out []AdminKey
	err := s.retry(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT name, created_at, revoked_at FROM admin_keys ORDER BY created_at, name`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (AdminKey, error) {
			var k AdminKey
			err := r.Scan(&k.Name, &k.CreatedAt, &k.RevokedAt)
			return k, err
		})
		return err
	})
	return out, err
}

// RevokeAdminKey revokes a key by name; ErrNotFound when no live key has
// that name.
func (s *Store) RevokeAdminKey(ctx context.Context, name string, now time.Time) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE admin_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL`, name, now)
	if err != nil {
		return s.check(err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("admin key: %w", ErrNotFound)
	}
	return nil
}
