package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Session is one refresh-token family.
type Session struct {
	ID         string
	UserID     string
	IDP        string
	Kind       string // web (refresh cookie) or native (refresh token in the body)
	UserAgent  string // of the client that started it
	IP         string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time // absolute
	RevokedAt  *time.Time
}

// ErrDisabled: the user is disabled; no session starts.
var ErrDisabled = errors.New("storage: user disabled")

// NewSession describes a session to create with its first refresh token.
type NewSession struct {
	UserID    string
	IDP       string
	Kind      string // web (default) or native
	TokenHash []byte
	Now       time.Time
	ExpiresAt time.Time
}

// CreateSession creates a session and its first refresh token in one
// statement, with the client of ctx's Actor. ErrNotFound when the user
// does not exist (deleted meanwhile), ErrDisabled when the user is
// disabled. The user row is held (FOR SHARE) while the session is
// inserted, so a concurrent disable either comes first (no session) or
// waits and then revokes this session too.
func (s *Store) CreateSession(ctx context.Context, n NewSession) (Session, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	a := ActorOf(ctx)
	if n.Kind == "" {
		n.Kind = "web"
	}
	sess := Session{ID: NewID(), UserID: n.UserID, IDP: n.IDP, Kind: n.Kind, UserAgent: a.UserAgent, IP: a.IP,
		CreatedAt: n.Now, LastUsedAt: n.Now, ExpiresAt: n.ExpiresAt}
	var created, exists bool
	err := s.pool.QueryRow(ctx, `
		WITH u AS (
			SELECT id, disabled_at FROM users WHERE id = $2 FOR SHARE
		), s AS (
			INSERT INTO sessions (id, user_id, idp, created_at, last_used_at, expires_at, kind, user_agent, ip)
			SELECT $1, u.id, $3, $4, $4, $5, $10, NULLIF($8, ''), NULLIF($7, '') FROM u WHERE u.disabled_at IS NULL
			RETURNING id, user_id
		), a AS (
			INSERT INTO audit_log (at, type, user_id, session_id, provider, ip, user_agent, actor)
			SELECT $4, 'login', s.user_id, s.id, $3, NULLIF($7, ''), NULLIF($8, ''), $9 FROM s
		), t AS (
			INSERT INTO refresh_tokens (hash, session_id, created_at)
			SELECT $6, s.id, $4 FROM s
		)
		SELECT EXISTS (SELECT 1 FROM s), EXISTS (SELECT 1 FROM u)`,
		sess.ID, n.UserID, n.IDP, n.Now, n.ExpiresAt, n.TokenHash, a.IP, a.UserAgent, a.Name, n.Kind).Scan(&created, &exists)
	switch {
	case err != nil:
		return Session{}, s.check(err)
	case !exists:
		return Session{}, fmt.Errorf("user: %w", ErrNotFound)
	case !created:
		return Session{}, ErrDisabled
	}
	return sess, nil
}

// Outcome of a refresh-token rotation.
type Outcome string

const (
	Rotated Outcome = "rotated" // the token was live; its child is live now
	Retried Outcome = "retried" // a retry within the grace: the same child again
	Reused  Outcome = "reused"  // replay after the grace: the session is revoked
	Revoked Outcome = "revoked"
	Expired Outcome = "expired" // absolute or idle lifetime over
	Unknown Outcome = "unknown"
	Live    Outcome = "live" // CheckRefresh: the token stands for its live session
)

// Rotation is the result of Rotate.
type Rotation struct {
	Outcome   Outcome
	SessionID string
	UserID    string
	IDP       string
	ExpiresAt time.Time
	Profile   map[string]string // the user's profile, read only when RotateParams.Profile
}

// Ok reports whether the caller may issue tokens (Rotated or Retried).
func (r Rotation) Ok() bool { return r.Outcome == Rotated || r.Outcome == Retried }

// RotateParams are the inputs of one rotation.
type RotateParams struct {
	Hash    []byte // SHA-256 of the presented token
	Child   []byte // SHA-256 of the child token derived from it
	Now     time.Time
	Grace   time.Duration
	Idle    time.Duration
	Profile bool // also read the user's profile (tokens.profile_claims), in the same round trip
}

// Rotate exchanges a refresh token for its child in one round trip (a
// single statement calling broker_rotate_refresh, which locks the token and
// then its session). Concurrent rotations of one token therefore serialise:
// one rotates, the others see a retry within the grace (same child) or a
// reuse after it; there are never two live children.
func (s *Store) Rotate(ctx context.Context, p RotateParams) (Rotation, error) {
	// A repeat of a rotation that did commit is a retry within the grace
	// (Postgres intervals count microseconds).
	a := ActorOf(ctx)
	if p.Profile {
		return s.judge(ctx, p.Grace >= time.Microsecond, true, `
			SELECT r.*, (SELECT u.profile FROM users u WHERE u.id = r.user_id)
			FROM broker_rotate_refresh($1, $2, $3, $4, $5, $6, $7) r`,
			p.Hash, p.Child, p.Now, p.Grace, p.Idle, a.IP, a.UserAgent)
	}
	return s.judge(ctx, p.Grace >= time.Microsecond, false, `SELECT * FROM broker_rotate_refresh($1, $2, $3, $4, $5, $6, $7)`,
		p.Hash, p.Child, p.Now, p.Grace, p.Idle, a.IP, a.UserAgent)
}

// judge runs one of the refresh-token functions, which answer (outcome,
// session_id, user_id, idp, expires_at).
// With profile, sql has a sixth column: the user's profile.
func (s *Store) judge(ctx context.Context, repeatable, profile bool, sql string, args ...any) (Rotation, error) {
	var (
		r             Rotation
		outcome       string
		sid, uid, idp *string
		expires       *time.Time
	)
	dest := []any{&outcome, &sid, &uid, &idp, &expires}
	if profile {
		dest = append(dest, &r.Profile)
	}
	err := s.run(ctx, repeatable, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, sql, args...).Scan(dest...)
	})
	if err != nil {
		return Rotation{}, err
	}
	r.Outcome = Outcome(outcome)
	if r.Outcome == Reused {
		s.eventsWritten()
	}
	if sid != nil {
		r.SessionID, r.UserID, r.IDP, r.ExpiresAt = *sid, *uid, *idp, *expires
	}
	return r, nil
}

// CheckParams are the inputs of one CheckRefresh.
type CheckParams struct {
	Hash  []byte // SHA-256 of the presented token
	Now   time.Time
	Grace time.Duration
	Idle  time.Duration
}

// CheckRefresh judges a refresh token presented to an endpoint that does
// not rotate it (link, logout), in one statement (broker_check_refresh).
// Live: the token is the session's newest, or its parent within the grace
// while the child is unused. Reused: an older generation; the session has
// been revoked, as a rotation would. Revoked, Expired, Unknown as for
// Rotate. Only a Live outcome stands for a signed-in session.
func (s *Store) CheckRefresh(ctx context.Context, p CheckParams) (Rotation, error) {
	a := ActorOf(ctx)
	return s.judge(ctx, true, false, `SELECT * FROM broker_check_refresh($1, $2, $3, $4, $5, $6)`,
		p.Hash, p.Now, p.Grace, p.Idle, a.IP, a.UserAgent)
}

// Session returns one session by id.
func (s *Store) Session(ctx context.Context, id string) (Session, error) {
	var x Session
	err := s.retry(ctx, func(ctx context.Context) error {
		return scanSession(s.pool.QueryRow(ctx, `
			SELECT id, user_id, idp, created_at, last_used_at, expires_at, revoked_at
			FROM sessions WHERE id = $1`, id), &x)
	})
	return x, err
}

func scanSession(row pgx.Row, x *Session) error {
	return row.Scan(&x.ID, &x.UserID, &x.IDP, &x.CreatedAt, &x.LastUsedAt, &x.ExpiresAt, &x.RevokedAt)
}

// RevokeSession revokes one session (idempotent) and reports it:
// session.revoked with reason, and an audit row (logout for reason logout,
// sessions_revoked otherwise).
func (s *Store) RevokeSession(ctx context.Context, id string, now time.Time, reason string) error {
	return s.txEvents(ctx, func(tx pgx.Tx) error {
		var userID string
		err := tx.QueryRow(ctx, `SELECT user_id FROM sessions WHERE id = $1 AND revoked_at IS NULL`, id).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		n, err := revokeSessions(ctx, tx, now, reason, `s.id = $3`, id)
		if err != nil || n == 0 {
			return err
		}
		return audit(ctx, tx, AuditEntry{At: now, Type: auditTypeOf(reason), UserID: userID, SessionID: id})
	})
}

// RevokeUserSessions revokes every live session of a user, reports each
// (session.revoked with reason) and writes one audit row (logout_all for
// reason logout_all, sessions_revoked otherwise). It returns how many were
// revoked.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string, now time.Time, reason string) (int64, error) {
	var n int64
	err := s.txEvents(ctx, func(tx pgx.Tx) error {
		var err error
		if n, err = revokeSessions(ctx, tx, now, reason, `s.user_id = $3`, userID); err != nil {
			return err
		}
		return audit(ctx, tx, AuditEntry{At: now, Type: auditTypeOf(reason), UserID: userID, Detail: reason})
	})
	return n, err
}

func auditTypeOf(reason string) string {
	switch reason {
	case "logout", "logout_all":
		return reason
	}
	return "sessions_revoked"
}

// Cleanup deletes sessions (with their tokens) that ended before cutoff:
// expired absolutely, idle for longer than idle, or revoked. It returns the
// number of sessions deleted.
func (s *Store) Cleanup(ctx context.Context, now time.Time, idle, keep time.Duration) (int64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	cutoff := now.Add(-keep)
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM sessions
		WHERE expires_at < $1 OR last_used_at + $2::interval < $1 OR revoked_at < $1`,
		cutoff, idle)
	if err != nil {
		return 0, s.check(err)
	}
	return tag.RowsAffected(), nil
}

// SignIn describes a returning user's login.
type SignIn struct {
	Provider  string
	Subject   string
	GrantEnc  []byte // the provider grant to keep; nil keeps the stored one
	TokenHash []byte
	Now       time.Time
	ExpiresAt time.Time
	Kind      string // web (default) or native
}

// SignIn finds the user of (provider, subject), stores the new grant and
// starts a session with its first refresh token, in one statement.
// ErrNotFound when the identity is unknown (a new user); ErrDisabled when
// its user is disabled (nothing is written).
func (s *Store) SignIn(ctx context.Context, in SignIn) (Session, error) {
	a := ActorOf(ctx)
	if in.Kind == "" {
		in.Kind = "web"
	}
	sess := Session{ID: NewID(), IDP: in.Provider, Kind: in.Kind, UserAgent: a.UserAgent, IP: a.IP,
		CreatedAt: in.Now, LastUsedAt: in.Now, ExpiresAt: in.ExpiresAt}
	var userID, sessID *string
	// It locks the identity, then the user (FOR SHARE, so that a disable
	// either comes first or revokes this session too): a deletion of that
	// user locks them the other way round. Not repeatable after a lost
	// connection (it may have committed), but after a deadlock.
	err := s.run(ctx, false, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `
		WITH i AS (
			SELECT user_id FROM identities WHERE provider = $1 AND subject = $2 FOR UPDATE
		), u AS (
			SELECT u.id FROM users u JOIN i ON u.id = i.user_id WHERE u.disabled_at IS NULL FOR SHARE OF u
		), g AS (
			UPDATE identities SET grant_enc = COALESCE($3, grant_enc)
			WHERE provider = $1 AND subject = $2 AND EXISTS (SELECT 1 FROM u)
		), s AS (
			INSERT INTO sessions (id, user_id, idp, created_at, last_used_at, expires_at, kind, user_agent, ip)
			SELECT $4, u.id, $1, $5, $5, $6, $11, NULLIF($9, ''), NULLIF($8, '') FROM u
			RETURNING id, user_id
		), t AS (
			INSERT INTO refresh_tokens (hash, session_id, created_at)
			SELECT $7, s.id, $5 FROM s
		), a AS (
			INSERT INTO audit_log (at, type, user_id, session_id, provider, ip, user_agent, actor)
			SELECT $5, 'login', s.user_id, s.id, $1, NULLIF($8, ''), NULLIF($9, ''), $10 FROM s
		)
		SELECT (SELECT user_id FROM i), (SELECT id FROM s)`,
			in.Provider, in.Subject, in.GrantEnc, sess.ID, in.Now, in.ExpiresAt, in.TokenHash, a.IP, a.UserAgent, a.Name, in.Kind).Scan(&userID, &sessID)
	})
	switch {
	case err != nil:
		return Session{}, err
	case userID == nil:
		return Session{}, ErrNotFound
	case sessID == nil:
		return Session{}, ErrDisabled
	}
	sess.UserID = *userID
	return sess, nil
}

// UserSessions returns a user's live sessions at now (not revoked, not
// past their absolute or idle lifetime), newest first.
func (s *Store) UserSessions(ctx context.Context, userID string, now time.Time, idle time.Duration) ([]Session, error) {
	var out []Session
	err := s.retry(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `
			SELECT id, user_id, idp, kind, COALESCE(user_agent, ''), COALESCE(ip, ''), created_at, last_used_at, expires_at, revoked_at
			FROM sessions
			WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_used_at + $3::interval > $2
			ORDER BY created_at DESC, id`, userID, now, idle)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Session, error) {
			var x Session
			err := r.Scan(&x.ID, &x.UserID, &x.IDP, &x.Kind, &x.UserAgent, &x.IP, &x.CreatedAt, &x.LastUsedAt, &x.ExpiresAt, &x.RevokedAt)
			return x, err
		})
		return err
	})
	return out, err
}

// RevokeOwnSession revokes session id only if it belongs to userID and is
// not revoked yet (reason self); ErrNotFound otherwise, with nothing
// revoked.
func (s *Store) RevokeOwnSession(ctx context.Context, userID, id string, now time.Time) error {
	return s.txEvents(ctx, func(tx pgx.Tx) error {
		n, err := revokeSessions(ctx, tx, now, "self", `s.id = $3 AND s.user_id = $4`, id, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("session: %w", ErrNotFound)
		}
		return audit(ctx, tx, AuditEntry{At: now, Type: "sessions_revoked", UserID: userID, SessionID: id, Detail: "self"})
	})
}
