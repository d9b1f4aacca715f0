package storage_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/socialbroker/broker/storage"
	"github.com/socialbroker/broker/storage/storagetest"
)

// terminateAll ends every other connection to the database, as a server
// restart or a failover would, and returns how many it ended.
func terminateAll(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// warm opens n pooled connections at once and returns them to the pool.
func warm(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	var held []*pgxpool.Conn
	for range n {
		c, err := pool.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for _, c := range held {
		if err := c.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.Release()
	}
}

func hashOf(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// After every pooled connection is terminated (a restart or failover),
// reads and rotations succeed at the first call: the lost connection is
// noticed, the pool is reset and the statement runs again on a fresh one.
// A write that is not safe to repeat fails with ErrUnavailable at most
// once, and the next call works.
func TestLostConnectionsRecovered(t *testing.T) {
	t.Parallel()
	url := storagetest.NewURL(t)
	ctx := context.Background()
	st, err := storage.Open(ctx, url, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	u, err := st.CreateUser(ctx, storage.NewUser{Now: now, Identity: storage.Identity{Provider: "kakao", Subject: "42"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSession(ctx, storage.NewSession{UserID: u.ID, IDP: "kakao", TokenHash: hashOf("t0"), Now: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	const conns = 4
	steps := []struct {
		name string
		call func() error
	}{
		{"IdentityUser", func() error {
			id, err := st.IdentityUser(ctx, "kakao", "42")
			if err == nil && id != u.ID {
				err = errors.New("wrong user " + id)
			}
			return err
		}},
		{"User", func() error { _, _, err := st.User(ctx, u.ID); return err }},
		{"SessionByToken", func() error { _, err := st.SessionByToken(ctx, hashOf("t0")); return err }},
		{"SigningKeys", func() error { _, err := st.SigningKeys(ctx); return err }},
		{"Rotate", func() error {
			r, err := st.Rotate(ctx, storage.RotateParams{Hash: hashOf("t0"), Child: hashOf("t1"), Now: now, Grace: 10 * time.Second, Idle: time.Hour})
			if err == nil && r.Outcome != storage.Rotated {
				err = errors.New("outcome " + string(r.Outcome))
			}
			return err
		}},
	}
	for _, s := range steps {
		warm(t, st.Pool(), conns)
		if n := terminateAll(t, url); n < conns {
			t.Fatalf("%s: terminated %d connections, want at least %d", s.name, n, conns)
		}
		if err := s.call(); err != nil {
			t.Fatalf("%s right after every connection was terminated: %v", s.name, err)
		}
	}

	// A single-use mark is not repeated: at most one ErrUnavailable, then
	// the pool has been renewed and the next mark is recorded.
	warm(t, st.Pool(), conns)
	terminateAll(t, url)
	mark := func(s string) error {
		return st.UseOnce(ctx, storage.Once{Kind: "state", Hash: hashOf(s), Expires: now.Add(time.Hour)})
	}
	if err := mark("a"); err != nil && !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("UseOnce on a lost connection: %v, want nil or ErrUnavailable", err)
	}
	if err := mark("b"); err != nil {
		t.Fatalf("UseOnce after the pool was renewed: %v", err)
	}
}
