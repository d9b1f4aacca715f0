package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pressly/goose/v3/lock"
)

// migrationLockWait bounds how long Migrate waits for another broker's
// migrations (goose's own session lock waits 5 minutes too).
const migrationLockWait = 5 * time.Minute

// xactLocker is the migration lock: a transaction-scoped advisory lock
// (pg_advisory_xact_lock) held by a transaction of its own on a second
// connection while goose applies migrations on the first. Ending the
// transaction releases it, and so does losing its connection (a broker that
// dies mid-migration).
//
// Unlike goose's session-level lock it works through PgBouncer in
// transaction pooling mode: the open transaction pins one server connection
// for exactly as long as the lock lives, where a session lock would stay
// behind on whichever server connection took it and be released (or not) on
// another. The key is goose's, so brokers still taking goose's session lock
// during an upgrade exclude these and the other way round (session and
// transaction advisory locks on one key conflict).
type xactLocker struct {
	id   int64
	wait time.Duration

	mu sync.Mutex
	tx *sql.Tx
}

var _ lock.Locker = (*xactLocker)(nil)

func newMigrationLocker() *xactLocker {
	return &xactLocker{id: lock.DefaultLockID, wait: migrationLockWait}
}

func (l *xactLocker) Lock(ctx context.Context, db *sql.DB) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tx != nil {
		return errors.New("migration lock: already held")
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	for _, q := range []string{
		// The transaction sits idle while the migrations run elsewhere.
		`SET LOCAL idle_in_transaction_session_timeout = 0`,
		fmt.Sprintf(`SET LOCAL lock_timeout = %d`, l.wait.Milliseconds()),
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, l.id); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("migration lock (waited for another broker's migrations up to %v): %w", l.wait, err)
	}
	l.tx = tx
	return nil
}

func (l *xactLocker) Unlock(ctx context.Context, db *sql.DB) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tx == nil {
		return nil
	}
	tx := l.tx
	l.tx = nil
	// Nothing was written: the rollback only ends the transaction, and the
	// lock with it.
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("migration unlock: %w", err)
	}
	return nil
}
