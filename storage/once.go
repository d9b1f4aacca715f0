package storage

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Once marks a single-use value (by hash) as used until expires.
type Once struct {
	Kind    string // "state", "signup", "id_token"
	Hash    []byte
	Expires time.Time
}

// UseOnce records o; ErrConflict when it was used before.
func (s *Store) UseOnce(ctx context.Context, o Once) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO used_once (kind, hash, expires_at) VALUES ($1, $2, $3)`,
		o.Kind, o.Hash, o.Expires)
	return s.check(err)
}

func useOnce(ctx context.Context, tx pgx.Tx, o *Once) error {
	if o == nil {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO used_once (kind, hash, expires_at) VALUES ($1, $2, $3)`,
		o.Kind, o.Hash, o.Expires)
	return err
}

// CleanupOnce forgets single-use values past their expiry.
func (s *Store) CleanupOnce(ctx context.Context, now time.Time) (int64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM used_once WHERE expires_at < $1`, now)
	if err != nil {
		return 0, s.check(err)
	}
	return tag.RowsAffected(), nil
}
