package storage

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"
)

// profileEventAt is the identity profile key holding when the last profile
// change a provider notified happened (RFC 3339), so that an older
// notification arriving late changes nothing.
const profileEventAt = "provider_event_at"

// UpdateIdentityProfile merges set into the profile of the identity
// (provider, subject), as a provider notified (Apple's email-disabled and
// email-enabled). at, when not zero, is when the change happened at the
// provider: a change older than the last one applied is ignored. A change
// that alters nothing writes nothing; one that does writes an audit row
// (provider_notification, with the actor of ctx). found is false for an
// unknown identity.
func (s *Store) UpdateIdentityProfile(ctx context.Context, provider, subject string, set map[string]string, at, now time.Time) (found, changed bool, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		found, changed = false, false // a rolled-back attempt may have set them
		var userID string
		var profile map[string]string
		err := tx.QueryRow(ctx, `SELECT user_id, profile FROM identities WHERE provider = $1 AND subject = $2 FOR UPDATE`,
			provider, subject).Scan(&userID, &profile)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		if profile == nil {
			profile = map[string]string{}
		}
		if !at.IsZero() {
			if last, err := time.Parse(time.RFC3339Nano, profile[profileEventAt]); err == nil && !at.After(last) {
				return nil
			}
		}
		next := maps.Clone(profile)
		maps.Copy(next, set)
		if !at.IsZero() {
			next[profileEventAt] = at.UTC().Format(time.RFC3339Nano)
		}
		if maps.Equal(next, profile) {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE identities SET profile = $3 WHERE provider = $1 AND subject = $2`,
			provider, subject, next); err != nil {
			return err
		}
		changed = true
		return audit(ctx, tx, AuditEntry{At: now, Type: "provider_notification", UserID: userID, Provider: provider, Detail: "profile"})
	})
	return found, changed, err
}

// SetIdentityGrant replaces the kept provider grant of an identity (a
// native app redeemed a new code for it). ErrNotFound when the identity is
// gone.
func (s *Store) SetIdentityGrant(ctx context.Context, provider, subject string, grantEnc []byte) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE identities SET grant_enc = $3 WHERE provider = $1 AND subject = $2`,
		provider, subject, grantEnc)
	if err != nil {
		return s.check(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
