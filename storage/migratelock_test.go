package storage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3/lock"

	"github.com/socialbroker/broker/internal/pgtest"
	"github.com/socialbroker/broker/storage"
)

// The migration lock is transaction-scoped: Migrate waits while another
// transaction holds the key, leaves no advisory lock behind (a session
// lock would stay on a PgBouncer server connection), and still excludes a
// broker holding goose's session-level lock on the same key.
func TestMigrationLockIsTransactionScoped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var url string
	var other *pgx.Conn
	for _, hold := range []struct{ name, lock, unlock string }{
		{"transaction lock", "BEGIN; SELECT pg_advisory_xact_lock($1)", "ROLLBACK"},
		{"session lock (goose's)", "SELECT pg_advisory_lock($1)", "SELECT pg_advisory_unlock($1)"},
	} {
		url = pgtest.NewDatabase(t) // empty: Migrate has work to do, so it locks
		var err error
		if other, err = pgx.Connect(ctx, url); err != nil {
			t.Fatal(err)
		}
		defer other.Close(context.Background())
		st, err := storage.Open(ctx, url, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for _, q := range strings.Split(hold.lock, "; ") {
			args := []any{}
			if strings.Contains(q, "$1") {
				args = append(args, lock.DefaultLockID)
			}
			if _, err := other.Exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { _, err := st.Migrate(ctx); done <- err }()
		select {
		case err := <-done:
			t.Fatalf("%s held elsewhere: Migrate returned %v without waiting", hold.name, err)
		case <-time.After(700 * time.Millisecond):
		}
		args := []any{}
		if strings.Contains(hold.unlock, "$1") {
			args = append(args, lock.DefaultLockID)
		}
		if _, err := other.Exec(ctx, hold.unlock, args...); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("after the %s was released: %v", hold.name, err)
		}
	}
	var n int
	if err := other.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d advisory locks left behind after Migrate", n)
	}

	one, err := storage.Open(ctx, url, storage.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if _, err := one.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "max_conns") {
		t.Fatalf("Migrate with one connection: %v, want an error naming max_conns", err)
	}
}
