package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is a broker user. ID is opaque and random.
type User struct {
	ID             string
	Profile        map[string]string
	CreatedAt      time.Time
	DisabledAt     *time.Time // nil: enabled
	DisabledReason string
}

// Identity links a provider account to a user.
type Identity struct {
	Provider string
	Subject  string
	UserID   string
	Profile  map[string]string
	GrantEnc []byte // encrypted provider tokens, or nil
	LinkedAt time.Time
}

// IdentityUser returns the user id owning (provider, subject), or ErrNotFound.
func (s *Store) IdentityUser(ctx context.Context, provider, subject string) (string, error) {
	var id string
	err := s.retry(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx,
			`SELECT user_id FROM identities WHERE provider = $1 AND subject = $2`,
			provider, subject).Scan(&id)
	})
	return id, err
}

// NewUser describes a user to create with its first identity.
type NewUser struct {
	Now      time.Time
	Profile  map[string]string
	Identity Identity
	Once     *Once // optional single-use mark recorded in the same transaction
	// Terms are the user's agreements to the service's terms, recorded in
	// the same transaction (the caller has checked the required ones).
	Terms []TermAgreement
}

// CreateUser creates a user and its first identity in one transaction. If
// the identity already exists (two first-time logins racing) or Once was
// used before, it returns ErrConflict and creates nothing; the caller then
// looks the identity up.
func (s *Store) CreateUser(ctx context.Context, n NewUser) (User, error) {
	now := n.Now
	u := User{ID: NewID(), Profile: n.Profile, CreatedAt: now}
	if u.Profile == nil {
		u.Profile = map[string]string{}
	}
	err := s.txEvents(ctx, func(tx pgx.Tx) error {
		if err := useOnce(ctx, tx, n.Once); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO users (id, profile, created_at) VALUES ($1, $2, $3)`,
			u.ID, u.Profile, now); err != nil {
			return err
		}
		if err := insertIdentity(ctx, tx, u.ID, n.Identity, now); err != nil {
			return err
		}
		if err := emit(ctx, tx, "user.created", map[string]any{
			"user_id": u.ID, "provider": n.Identity.Provider, "profile": u.Profile, "terms": termTags(n.Terms),
		}, now); err != nil {
			return err
		}
		if err := audit(ctx, tx, AuditEntry{At: now, Type: "signup", UserID: u.ID, Provider: n.Identity.Provider}); err != nil {
			return err
		}
		return insertTerms(ctx, tx, u.ID, n.Identity.Provider, n.Terms, now)
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// LinkIdentity attaches an identity to the user of a signed-in session. It
// links only while that session is live at now (not revoked, not past its
// absolute lifetime) and holds the session row while it does, so a logout
// or revocation committed first stops the link, and one that comes later
// finds it done. ErrConflict if the identity belongs to anyone (including
// this user); ErrNotFound if the session has ended or is gone.
func (s *Store) LinkIdentity(ctx context.Context, sessionID string, ident Identity, now time.Time) (userID string, err error) {
	err = s.txEvents(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			SELECT user_id FROM sessions
			WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2
			FOR SHARE`, sessionID, now).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("live session: %w", ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := insertIdentity(ctx, tx, userID, ident, now); err != nil {
			return err
		}
		if err := emit(ctx, tx, "identity.linked", map[string]any{"user_id": userID, "provider": ident.Provider}, now); err != nil {
			return err
		}
		return audit(ctx, tx, AuditEntry{At: now, Type: "link", UserID: userID, SessionID: sessionID, Provider: ident.Provider})
	})
	return userID, err
}

// insertIdentity inserts an identity and cancels any revocation still
// queued for it: the person deleted their account or unlinked and came back
// before the outbox ran, and the provider's grant is now the new one.
func insertIdentity(ctx context.Context, tx pgx.Tx, userID string, ident Identity, now time.Time) error {
	p := ident.Profile
	if p == nil {
		p = map[string]string{}
	}
	if _, err := tx.Exec(ctx,
		`INSERT INTO identities (provider, subject, user_id, profile, grant_enc, linked_at)
		 VALUES ($1, $2, $3, $4, $5, $6)`,
		ident.Provider, ident.Subject, userID, p, ident.GrantEnc, now); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, cancelRevocationsSQL, ident.Provider, ident.Subject)
	return err
}

// User returns a user and its identities (oldest first).
func (s *Store) User(ctx context.Context, id string) (User, []Identity, error) {
	var (
		u      User
		idents []Identity
	)
	err := s.retry(ctx, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx,
			`SELECT id, profile, created_at, disabled_at, COALESCE(disabled_reason, '') FROM users WHERE id = $1`, id).
			Scan(&u.ID, &u.Profile, &u.CreatedAt, &u.DisabledAt, &u.DisabledReason)
		if err != nil {
			return err
		}
		rows, err := s.pool.Query(ctx,
			`SELECT provider, subject, user_id, profile, grant_enc, linked_at
			 FROM identities WHERE user_id = $1 ORDER BY linked_at, provider`, id)
		if err != nil {
			return err
		}
		idents, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Identity, error) {
			var i Identity
			err := r.Scan(&i.Provider, &i.Subject, &i.UserID, &i.Profile, &i.GrantEnc, &i.LinkedAt)
			return i, err
		})
		return err
	})
	if err != nil {
		return User{}, nil, err
	}
	return u, idents, nil
}
