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
// reads and rotations succeed at the first call: the statement meets a dead
// connection, the pool is marked suspect and the statement runs again on a
// fresh one. Each step uses a store of its own, so that it starts with a
// pool that knows nothing yet. A write that is not safe to repeat is not
// repeated: it fails with ErrUnavailable, and was not applied.
func TestLostConnectionsRecovered(t *testing.T) {
	t.Parallel()
	url := storagetest.NewURL(t)
	ctx := context.Background()
	open := func() *storage.Store {
		st, err := storage.Open(ctx, url, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		return st
	}
	st := open()
	now := time.Now()
	u, err := st.CreateUser(ctx, storage.NewUser{Now: now, Identity: storage.Identity{Provider: "kakao", Subject: "42"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSession(ctx, storage.NewSession{UserID: u.ID, IDP: "kakao", TokenHash: hashOf("t0"), Now: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	const conns = 4
	// lost returns a fresh store whose pooled connections were all
	// terminated behind its back.
	lost := func(name string) *storage.Store {
		st := open()
		warm(t, st.Pool(), conns)
		if n := terminateAll(t, url); n < conns {
			t.Fatalf("%s: terminated %d connections, want at least %d", name, n, conns)
		}
		return st
	}
	steps := []struct {
		name string
		call func(st *storage.Store) error
	}{
		{"IdentityUser", func(st *storage.Store) error {
			id, err := st.IdentityUser(ctx, "kakao", "42")
			if err == nil && id != u.ID {
				err = errors.New("wrong user " + id)
			}
			return err
		}},
		{"User", func(st *storage.Store) error { _, _, err := st.User(ctx, u.ID); return err }},
		{"CheckRefresh", func(st *storage.Store) error {
			r, err := st.CheckRefresh(ctx, storage.CheckParams{Hash: hashOf("t0"), Now: now, Grace: 10 * time.Second, Idle: time.Hour})
			if err == nil && r.Outcome != storage.Live {
				err = errors.New("outcome " + string(r.Outcome))
			}
			return err
		}},
		{"SigningKeys", func(st *storage.Store) error { _, err := st.SigningKeys(ctx); return err }},
		{"Rotate", func(st *storage.Store) error {
			r, err := st.Rotate(ctx, storage.RotateParams{Hash: hashOf("t0"), Child: hashOf("t1"), Now: now, Grace: 10 * time.Second, Idle: time.Hour})
			if err == nil && r.Outcome != storage.Rotated {
				err = errors.New("outcome " + string(r.Outcome))
			}
			return err
		}},
	}
	for _, s := range steps {
		if err := s.call(lost(s.name)); err != nil {
			t.Fatalf("%s right after every connection was terminated: %v", s.name, err)
		}
	}

	// A single-use mark is not repeated: the first call fails on the dead
	// connection without being applied (the same mark is recorded
	// afterwards), and the pool then replaces its dead connections.
	st = lost("UseOnce")
	mark := func(s string) error {
		return st.UseOnce(ctx, storage.Once{Kind: "state", Hash: hashOf(s), Expires: now.Add(time.Hour)})
	}
	if err := mark("a"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("UseOnce on a lost connection: %v, want ErrUnavailable (not retried)", err)
	}
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		if err := mark(s); err != nil {
			t.Fatalf("UseOnce %q after the first failure: %v", s, err)
		}
	}
}

// A user deleted while one of their tokens rotates: the deletion locks the
// session and waits for the token, the rotation holds the token and waits
// for the session (its child's foreign key). Postgres aborts the deletion,
// which waited first; the store runs it again once the rotation is done,
// and the caller sees one successful deletion.
func TestDeadlockVictimRetried(t *testing.T) {
	t.Parallel()
	url := storagetest.NewURL(t)
	ctx := context.Background()
	st, err := storage.Open(ctx, url, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	u, err := st.CreateUser(ctx, storage.NewUser{Now: now, Identity: storage.Identity{Provider: "kakao", Subject: "7"}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := st.CreateSession(ctx, storage.NewSession{UserID: u.ID, IDP: "kakao", TokenHash: hashOf("p"), Now: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	// The rotation, by hand: lock the parent token...
	rot, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close(ctx)
	// The deletion, waiting first with the default 1 s, detects the deadlock
	// first and is its victim: its retry is what this test shows.
	if _, err := rot.Exec(ctx, `SET deadlock_timeout = '10s'`); err != nil {
		t.Fatal(err)
	}
	tx, err := rot.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET rotated_at = $2, child_hash = $3 WHERE hash = $1`, hashOf("p"), now, hashOf("c")); err != nil {
		t.Fatal(err)
	}
	// ...while the deletion starts and waits for it...
	deleted := make(chan error, 1)
	go func() { deleted <- st.DeleteUser(ctx, u.ID, now, "self") }()
	waitForLockWait(t, url)
	// ...then insert the child, which needs the session the deletion holds.
	if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (hash, session_id, parent_hash, created_at) VALUES ($1, $2, $3, $4)`,
		hashOf("c"), sess.ID, hashOf("p"), now); err != nil {
		t.Fatalf("the rotation was the deadlock's victim, not the deletion: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("DeleteUser after a deadlock: %v", err)
	}
	if _, _, err := st.User(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the user is still there: %v", err)
	}
}

// waitForLockWait returns once another session of the database waits for a
// row lock.
func waitForLockWait(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for range 200 {
		var n int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the deletion never waited for the token's lock")
}
