package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/socialbroker/broker/migrations"
)

// Migrate applies pending migrations under a transaction-scoped Postgres
// advisory lock (see xactLocker), so two brokers starting together apply
// each migration exactly once, also through PgBouncer in transaction
// pooling mode. It needs two connections: the pool's max_conns must be at
// least 2.
func (s *Store) Migrate(ctx context.Context) (applied int, err error) {
	if s.pool.Config().MaxConns < 2 {
		return 0, errors.New("migrate: database.max_conns must be at least 2 (the migration lock holds a connection of its own)")
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	return migrate(ctx, db)
}

func migrate(ctx context.Context, db *sql.DB) (int, error) {
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithLocker(newMigrationLocker()))
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", classify(err))
	}
	return len(res), nil
}

// PendingMigrations counts the migrations not applied yet (all of them on
// an empty database). It takes no lock and changes nothing.
func (s *Store) PendingMigrations(ctx context.Context) (int, error) {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	st, err := p.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", classify(err))
	}
	n := 0
	for _, m := range st {
		if m.State == goose.StatePending {
			n++
		}
	}
	return n, nil
}
