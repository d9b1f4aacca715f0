package storage

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// NativeCode is a broker code of a native app login (RFC 8252): single
// use, short-lived, kept only as a hash, bound to the app's client_id,
// redirect_uri and PKCE challenge and to the session it starts.
type NativeCode struct {
	Hash        []byte // SHA-256 of the code
	SessionID   string
	ClientID    string
	RedirectURI string
	Challenge   string // PKCE S256 code_challenge
	CreatedAt   time.Time
	ExpiresAt   time.Time

	// Filled in by RedeemCode: the session's user and provider.
	UserID string
	IDP    string
}

// CodeOutcome is what RedeemCode made of a presented code.
type CodeOutcome string

const (
	CodeRedeemed CodeOutcome = "redeemed" // first use within its lifetime, bindings accepted
	CodeReplayed CodeOutcome = "replayed" // used before: its session is revoked (reuse_detected)
	CodeRefused  CodeOutcome = "refused"  // bindings refused, or its session ended: the unredeemed session is deleted
	CodeExpired  CodeOutcome = "expired"  // past its lifetime: the unredeemed session is deleted
	CodeUnknown  CodeOutcome = "unknown"
)

// CreateCode stores a code for a session just created (kind native) whose
// refresh token the code's redemption hands out.
func (s *Store) CreateCode(ctx context.Context, c NativeCode) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `
		INSERT INTO native_codes (hash, session_id, client_id, redirect_uri, challenge, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		c.Hash, c.SessionID, c.ClientID, c.RedirectURI, c.Challenge, c.CreatedAt, c.ExpiresAt)
	return s.check(err)
}

// DiscardSession deletes a session that was never handed out (a code that
// could not be stored after its session was created).
func (s *Store) DiscardSession(ctx context.Context, id string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id)
	return s.check(err)
}

// RedeemCode judges a presented code in one transaction, with its row
// locked, so that two redemptions at once are a first and a second use:
//
//   - unknown hash: CodeUnknown, nothing written;
//   - used before: CodeReplayed, and the session it started is revoked
//     (reason reuse_detected: RFC 6749 §4.1.2);
//   - past expires_at, or its session revoked or expired meanwhile (a
//     disabled user), or accept refuses the bindings (another client,
//     another redirect URI, a wrong verifier): CodeExpired or CodeRefused,
//     and its session, whose token nobody has seen, is deleted with it;
//   - otherwise CodeRedeemed: the code is marked used and returned with
//     the session's user and provider.
func (s *Store) RedeemCode(ctx context.Context, hash []byte, now time.Time, accept func(NativeCode) bool) (NativeCode, CodeOutcome, error) {
	var (
		c       NativeCode
		outcome CodeOutcome
	)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		c, outcome = NativeCode{}, CodeUnknown
		var (
			used, revoked  *time.Time
			sessionExpires time.Time
		)
		err := tx.QueryRow(ctx, `
			SELECT c.hash, c.session_id, c.client_id, c.redirect_uri, c.challenge, c.created_at, c.expires_at, c.used_at,
			       s.user_id, s.idp, s.revoked_at, s.expires_at
			FROM native_codes c JOIN sessions s ON s.id = c.session_id
			WHERE c.hash = $1
			FOR UPDATE OF c`, hash).Scan(&c.Hash, &c.SessionID, &c.ClientID, &c.RedirectURI, &c.Challenge, &c.CreatedAt, &c.ExpiresAt, &used,
			&c.UserID, &c.IDP, &revoked, &sessionExpires)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case used != nil:
			outcome = CodeReplayed
			n, err := revokeSessions(ctx, tx, now, "reuse_detected", `s.id = $3`, c.SessionID)
			if err != nil || n == 0 {
				return err
			}
			return audit(ctx, tx, AuditEntry{At: now, Type: "sessions_revoked", UserID: c.UserID, SessionID: c.SessionID, Detail: "code_replayed"})
		case !now.Before(c.ExpiresAt):
			outcome = CodeExpired
		case revoked != nil || !now.Before(sessionExpires) || !accept(c):
			outcome = CodeRefused
		default:
			outcome = CodeRedeemed
			_, err := tx.Exec(ctx, `UPDATE native_codes SET used_at = $2 WHERE hash = $1`, hash, now)
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, c.SessionID)
		return err
	})
	if err != nil {
		return NativeCode{}, CodeUnknown, err
	}
	if outcome == CodeReplayed {
		s.eventsWritten()
	}
	return c, outcome, nil
}

// CleanupCodes deletes the sessions of codes that expired unredeemed
// (nobody ever held their tokens; their codes go with them), and forgets
// used codes once expired for longer than keep (a replay after that is an
// unknown code). It returns the number of codes deleted.
func (s *Store) CleanupCodes(ctx context.Context, now time.Time, keep time.Duration) (int64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var n int64
	err := s.pool.QueryRow(ctx, `
		WITH stale AS (
			DELETE FROM sessions s USING native_codes c
			WHERE c.session_id = s.id AND c.used_at IS NULL AND c.expires_at < $1
			RETURNING s.id
		), old AS (
			DELETE FROM native_codes WHERE used_at IS NOT NULL AND expires_at < $2
			RETURNING hash
		)
		SELECT (SELECT count(*) FROM stale) + (SELECT count(*) FROM old)`, now, now.Add(-keep)).Scan(&n)
	if err != nil {
		return 0, s.check(err)
	}
	return n, nil
}
