package storage

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// SigningKey is a stored signing key; PrivateEnc is AES-256-GCM encrypted.
type SigningKey struct {
	KID         string
	Alg         string
	PublicDER   []byte
	PrivateEnc  []byte
	CreatedAt   time.Time
	ActivatesAt time.Time
}

// SigningKeys lists every stored key, oldest activation first.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	var keys []SigningKey
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		keys, err = querySigningKeys(ctx, s.pool)
		return err
	})
	return keys, err
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func querySigningKeys(ctx context.Context, q querier) ([]SigningKey, error) {
	rows, err := q.Query(ctx, `
		SELECT kid, alg, public_der, private_enc, created_at, activates_at
		FROM signing_keys ORDER BY activates_at, kid`)
	if err != nil {
		return nil, err
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SigningKey, error) {
		var k SigningKey
		err := r.Scan(&k.KID, &k.Alg, &k.PublicDER, &k.PrivateEnc, &k.CreatedAt, &k.ActivatesAt)
		return k, err
	})
	return keys, err
}

// KeyTx is the view of the key table inside WithKeyLock.
type KeyTx interface {
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	InsertSigningKey(ctx context.Context, k SigningKey) error
	DeleteSigningKey(ctx context.Context, kid string) error
}

type keyTx struct{ tx pgx.Tx }

// The keyTx methods return the driver's errors as they are: WithKeyLock
// classifies what leaves the transaction (and notices a lost connection).

func (k keyTx) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	return querySigningKeys(ctx, k.tx)
}

func (k keyTx) InsertSigningKey(ctx context.Context, key SigningKey) error {
	_, err := k.tx.Exec(ctx, `
		INSERT INTO signing_keys (kid, alg, public_der, private_enc, created_at, activates_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		key.KID, key.Alg, key.PublicDER, key.PrivateEnc, key.CreatedAt, key.ActivatesAt)
	return err
}

func (k keyTx) DeleteSigningKey(ctx context.Context, kid string) error {
	_, err := k.tx.Exec(ctx, `DELETE FROM signing_keys WHERE kid = $1`, kid)
	return err
}

// keyLockID is the advisory lock under which key decisions are made, so
// several brokers on one database agree on the key schedule.
const keyLockID = 0x6b65797374617465 // "keystate"

// WithKeyLock runs fn in a transaction holding the key advisory lock.
// Brokers decide about keys (bootstrap, rotation, removal) only inside it.
func (s *Store) WithKeyLock(ctx context.Context, fn func(KeyTx) error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.check(pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(keyLockID)); err != nil {
			return err
		}
		return fn(keyTx{tx})
	}))
}
