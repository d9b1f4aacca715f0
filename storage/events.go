package storage

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// Actor says who and where a change comes from, for the audit log: the
// client's address and user agent, and "user", "provider" or "admin:NAME".
// Handlers put it in the request's context (WithActor); every store method
// that writes an audit row reads it from there.
type Actor struct {
	IP, UserAgent string
	Name          string // user (default), provider, admin:NAME
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns the actor ctx carries (Name "user" by default).
func ActorOf(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	if a.Name == "" {
		a.Name = "user"
	}
	return a
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID        int64
	At        time.Time
	Type      string // login, signup, login_failed, refresh_reuse, logout, …
	UserID    string
	SessionID string
	Provider  string
	IP        string
	UserAgent string
	Actor     string
	Detail    string // an error code or a reason; never personal data
}

// audit writes one audit row in tx, with the actor of ctx.
func audit(ctx context.Context, tx pgx.Tx, e AuditEntry) error {
	a := ActorOf(ctx)
	_, err := tx.Exec(ctx, `
		INSERT INTO audit_log (at, type, user_id, session_id, provider, ip, user_agent, actor, detail)
		VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), NULLIF($7, ''), $8, NULLIF($9, ''))`,
		e.At, e.Type, e.UserID, e.SessionID, e.Provider, a.IP, a.UserAgent, a.Name, e.Detail)
	return err
}

// Audit writes one audit row for an action that changes nothing else (a
// failed login), with the actor of ctx.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	return s.tx(ctx, func(tx pgx.Tx) error { return audit(ctx, tx, e) })
}

// emit writes one event in tx: it is delivered only if tx commits.
func emit(ctx context.Context, tx pgx.Tx, typ string, data map[string]any, now time.Time) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `SELECT broker_emit($1, $2, $3)`, typ, b, now)
	return err
}

// revokeSessions revokes the live sessions matched by where (over sessions
// s, args from $3 on) at now with reason, in tx, and emits session.revoked
// for each. It returns how many were revoked.
func revokeSessions(ctx context.Context, tx pgx.Tx, now time.Time, reason, where string, args ...any) (int64, error) {
	tag, err := tx.Exec(ctx, `
		WITH r AS (
			UPDATE sessions s SET revoked_at = $1, revoked_reason = $2
			WHERE s.revoked_at IS NULL AND `+where+`
			RETURNING s.id, s.user_id
		)
		SELECT broker_emit('session.revoked',
			jsonb_build_object('user_id', r.user_id, 'session_id', r.id, 'reason', $2::text), $1)
		FROM r`, append([]any{now, reason}, args...)...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// Endpoint is one event receiver of the config.
type Endpoint struct {
	URL   string
	Types []string // nil: every type
}

// SyncEndpoints makes the endpoints table say what the config says. The
// pending deliveries of endpoints no longer configured are dropped; it
// returns how many.
func (s *Store) SyncEndpoints(ctx context.Context, eps []Endpoint) (dropped int64, err error) {
	urls := make([]string, len(eps))
	for i, e := range eps {
		urls[i] = e.URL
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FROM event_deliveries
			WHERE delivered_at IS NULL AND given_up_at IS NULL AND NOT (endpoint = ANY ($1))`, urls).Scan(&dropped); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM event_endpoints WHERE NOT (url = ANY ($1))`, urls); err != nil {
			return err
		}
		for _, e := range eps {
			if _, err := tx.Exec(ctx, `
				INSERT INTO event_endpoints (url, types) VALUES ($1, $2)
				ON CONFLICT (url) DO UPDATE SET types = EXCLUDED.types`, e.URL, e.Types); err != nil {
				return err
			}
		}
		return nil
	})
	return dropped, err
}

// Delivery is one event to send to one endpoint.
type Delivery struct {
	EventID   string
	Endpoint  string
	Type      string
	Data      json.RawMessage
	CreatedAt time.Time
	Attempts  int // including the one now leased
}

// ClaimDeliveries leases up to limit due deliveries of endpoint until
// now+lease: no other broker takes them meanwhile, and they are due again
// after the lease if this one never reports back.
func (s *Store) ClaimDeliveries(ctx context.Context, endpoint string, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		WITH due AS (
			SELECT event_id FROM event_deliveries
			WHERE endpoint = $1 AND delivered_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= $2
			ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED
		), d AS (
			UPDATE event_deliveries d SET next_attempt_at = $3, attempts = d.attempts + 1
			FROM due WHERE d.endpoint = $1 AND d.event_id = due.event_id
			RETURNING d.event_id, d.attempts
		)
		SELECT e.id, e.type, e.data, e.created_at, d.attempts FROM d JOIN events e ON e.id = d.event_id`,
		endpoint, now, now.Add(lease), limit)
	if err != nil {
		return nil, s.check(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
		v := Delivery{Endpoint: endpoint}
		err := r.Scan(&v.EventID, &v.Type, &v.Data, &v.CreatedAt, &v.Attempts)
		return v, err
	})
	return out, s.check(err)
}

// DeliveryResult is the outcome of one attempt.
type DeliveryResult struct {
	EventID string
	Next    time.Time // zero: delivered (Error empty) or given up
	Error   string    // "" when delivered
}

// FinishDeliveries records the outcomes of attempts at endpoint, in one
// statement: delivered, rescheduled (Next set) or given up.
func (s *Store) FinishDeliveries(ctx context.Context, endpoint string, now time.Time, rs []DeliveryResult) error {
	ids := make([]string, len(rs))
	nexts := make([]*time.Time, len(rs))
	errs := make([]string, len(rs))
	for i, r := range rs {
		ids[i], errs[i] = r.EventID, r.Error
		if !r.Next.IsZero() {
			nexts[i] = &r.Next
		}
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `
		UPDATE event_deliveries d SET
			delivered_at    = CASE WHEN r.err = '' THEN $2::timestamptz END,
			given_up_at     = CASE WHEN r.err <> '' AND r.next IS NULL THEN $2::timestamptz END,
			next_attempt_at = COALESCE(r.next, d.next_attempt_at),
			last_error      = NULLIF(r.err, '')
		FROM unnest($3::text[], $4::timestamptz[], $5::text[]) AS r(id, next, err)
		WHERE d.endpoint = $1 AND d.event_id = r.id`,
		endpoint, now, ids, nexts, errs)
	return s.check(err)
}

// EventStatus is an event and its delivery to one endpoint, for operators.
type EventStatus struct {
	Delivery
	DeliveredAt, GivenUpAt *time.Time
	NextAttemptAt          time.Time
	LastError              string
}

// ListEvents returns the newest deliveries first; with failed, only those
// given up or with a failed attempt.
func (s *Store) ListEvents(ctx context.Context, failed bool, limit int) ([]EventStatus, error) {
	var out []EventStatus
	err := s.retry(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `
			SELECT e.id, e.type, e.data, e.created_at, d.endpoint, d.attempts, d.next_attempt_at,
			       d.delivered_at, d.given_up_at, COALESCE(d.last_error, '')
			FROM event_deliveries d JOIN events e ON e.id = d.event_id
			WHERE NOT $1 OR d.given_up_at IS NOT NULL OR (d.delivered_at IS NULL AND d.last_error IS NOT NULL)
			ORDER BY e.created_at DESC, e.id LIMIT $2`, failed, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (EventStatus, error) {
			var v EventStatus
			err := r.Scan(&v.EventID, &v.Type, &v.Data, &v.CreatedAt, &v.Endpoint, &v.Attempts, &v.NextAttemptAt,
				&v.DeliveredAt, &v.GivenUpAt, &v.LastError)
			return v, err
		})
		return err
	})
	return out, err
}

// Redeliver makes every delivery of event id due again at now, with a
// fresh retry schedule; it returns how many deliveries it reset
// (ErrNotFound for an unknown event).
func (s *Store) Redeliver(ctx context.Context, id string, now time.Time) (int64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `
		UPDATE event_deliveries SET delivered_at = NULL, given_up_at = NULL, attempts = 0,
			next_attempt_at = $2, last_error = NULL
		WHERE event_id = $1`, id, now)
	if err != nil {
		return 0, s.check(err)
	}
	if tag.RowsAffected() == 0 {
		return 0, ErrNotFound
	}
	return tag.RowsAffected(), nil
}

// PendingDeliveries counts deliveries neither delivered nor given up.
func (s *Store) PendingDeliveries(ctx context.Context) (int64, error) {
	var n int64
	err := s.retry(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `
			SELECT count(*) FROM event_deliveries WHERE delivered_at IS NULL AND given_up_at IS NULL`).Scan(&n)
	})
	return n, err
}

// CleanupEvents forgets events all of whose deliveries ended (delivered or
// given up) before cutoff, and events no endpoint takes.
func (s *Store) CleanupEvents(ctx context.Context, cutoff time.Time) (int64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM events e WHERE e.created_at < $1 AND NOT EXISTS (
			SELECT 1 FROM event_deliveries d WHERE d.event_id = e.id
			AND (COALESCE(d.delivered_at, d.given_up_at) IS NULL OR COALESCE(d.delivered_at, d.given_up_at) >= $1))`,
		cutoff)
	if err != nil {
		return 0, s.check(err)
	}
	return tag.RowsAffected(), nil
}

// CleanupAudit forgets audit rows older than cutoff.
func (s *Store) CleanupAudit(ctx context.Context, cutoff time.Time) (int64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit_log WHERE at < $1`, cutoff)
	if err != nil {
		return 0, s.check(err)
	}
	return tag.RowsAffected(), nil
}
