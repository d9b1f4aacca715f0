package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrLastIdentity: a user's only identity cannot be unlinked.
var ErrLastIdentity = errors.New("storage: last identity")

// enqueueRevocations queues the grants of the identities matched by where.
func enqueueRevocations(ctx context.Context, tx pgx.Tx, now time.Time, where string, args ...any) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO revocations (provider, subject, grant_enc, next_attempt_at, created_at)
		SELECT provider, subject, grant_enc, $1, $1 FROM identities WHERE `+where,
		append([]any{now}, args...)...)
	return err
}

// DeleteUser deletes a user with its identities, sessions and refresh
// tokens in one transaction, and queues the revocation of every provider
// grant it had. reason (self, admin) goes into the user.deleted event;
// every live session is reported revoked (user_deleted).
func (s *Store) DeleteUser(ctx context.Context, id string, now time.Time, reason string) error {
	return s.txEvents(ctx, func(tx pgx.Tx) error {
		if err := enqueueRevocations(ctx, tx, now, `user_id = $2`, id); err != nil {
			return err
		}
		if _, err := revokeSessions(ctx, tx, now, "user_deleted", `s.user_id = $3`, id); err != nil {
			return err
		}
		var provs []string
		err := tx.QueryRow(ctx, `
			WITH i AS (SELECT provider FROM identities WHERE user_id = $1),
			     u AS (DELETE FROM users WHERE id = $1 RETURNING id)
			SELECT COALESCE((SELECT array_agg(DISTINCT provider ORDER BY provider) FROM i), '{}') FROM u`, id).Scan(&provs)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user: %w", ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := emit(ctx, tx, "user.deleted", map[string]any{"user_id": id, "reason": reason, "providers": provs}, now); err != nil {
			return err
		}
		return audit(ctx, tx, AuditEntry{At: now, Type: "user_deleted", UserID: id, Detail: reason})
	})
}

// UnlinkIdentity removes a user's identity at provider and queues the
// revocation of its grant. ErrLastIdentity when it is the user's only one;
// ErrNotFound when the user has none there.
func (s *Store) UnlinkIdentity(ctx context.Context, userID, provider string, now time.Time) error {
	return s.txEvents(ctx, func(tx pgx.Tx) error {
		// Lock the user's identities so two unlinks cannot both pass the count.
		rows, err := tx.Query(ctx, `SELECT provider FROM identities WHERE user_id = $1 FOR UPDATE`, userID)
		if err != nil {
			return err
		}
		provs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		n := 0
		for _, p := range provs {
			if p == provider {
				n++
			}
		}
		switch {
		case n == 0:
			return fmt.Errorf("identity: %w", ErrNotFound)
		case n == len(provs):
			return ErrLastIdentity
		}
		if err := enqueueRevocations(ctx, tx, now, `user_id = $2 AND provider = $3`, userID, provider); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `DELETE FROM identities WHERE user_id = $1 AND provider = $2`, userID, provider); err != nil {
			return err
		}
		if err := emit(ctx, tx, "identity.unlinked", map[string]any{"user_id": userID, "provider": provider, "reason": "self"}, now); err != nil {
			return err
		}
		return audit(ctx, tx, AuditEntry{At: now, Type: "unlink", UserID: userID, Provider: provider})
	})
}

// RemoveIdentity handles a provider telling us the user left (Kakao's
// unlink webhook): the identity goes, the user's sessions are revoked, and
// the user is deleted when it was their only identity. Nothing is queued:
// the provider already ended the grant. found is false for an unknown
// identity.
func (s *Store) RemoveIdentity(ctx context.Context, provider, subject string, now time.Time) (found, userDeleted bool, err error) {
	err = s.txEvents(ctx, func(tx pgx.Tx) error {
		found, userDeleted = false, false // a rolled-back attempt may have set them
		var userID string
		err := tx.QueryRow(ctx, `DELETE FROM identities WHERE provider = $1 AND subject = $2 RETURNING user_id`,
			provider, subject).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		if _, err := revokeSessions(ctx, tx, now, "provider", `s.user_id = $3`, userID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM users u WHERE u.id = $1
			AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id)`, userID)
		if err != nil {
			return err
		}
		userDeleted = tag.RowsAffected() == 1
		if userDeleted {
			err = emit(ctx, tx, "user.deleted", map[string]any{"user_id": userID, "reason": "provider", "providers": []string{provider}}, now)
		} else {
			err = emit(ctx, tx, "identity.unlinked", map[string]any{"user_id": userID, "provider": provider, "reason": "provider"}, now)
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, AuditEntry{At: now, Type: "provider_notification", UserID: userID, Provider: provider, Detail: "unlink"})
	})
	return found, userDeleted, err
}

// Revocation is one queued grant revocation.
type Revocation struct {
	ID        int64
	Provider  string
	Subject   string
	GrantEnc  []byte
	Attempts  int
	CreatedAt time.Time
}

// ClaimRevocations leases up to limit due revocations until now+lease.
func (s *Store) ClaimRevocations(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Revocation, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		UPDATE revocations r SET next_attempt_at = $2, attempts = r.attempts + 1
		WHERE r.id IN (SELECT id FROM revocations WHERE next_attempt_at <= $1
		               ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING r.id, r.provider, r.subject, r.grant_enc, r.attempts, r.created_at`,
		now, now.Add(lease), limit)
	if err != nil {
		return nil, s.check(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Revocation, error) {
		var v Revocation
		err := r.Scan(&v.ID, &v.Provider, &v.Subject, &v.GrantEnc, &v.Attempts, &v.CreatedAt)
		return v, err
	})
	return out, s.check(err)
}

const cancelRevocationsSQL = `DELETE FROM revocations WHERE provider = $1 AND subject = $2`

// CancelRevocations forgets the revocations queued for (provider, subject):
// the person proved that account again, and its grant is the new one.
func (s *Store) CancelRevocations(ctx context.Context, provider, subject string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, cancelRevocationsSQL, provider, subject)
	return s.check(err)
}

// FinishRevocation removes a done (or abandoned) revocation.
func (s *Store) FinishRevocation(ctx context.Context, id int64) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `DELETE FROM revocations WHERE id = $1`, id)
	return s.check(err)
}

// RetryRevocation schedules another attempt and records a short reason
// (an error code, never a provider body).
func (s *Store) RetryRevocation(ctx context.Context, id int64, next time.Time, reason string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `UPDATE revocations SET next_attempt_at = $2, last_error = $3 WHERE id = $1`, id, next, reason)
	return s.check(err)
}
