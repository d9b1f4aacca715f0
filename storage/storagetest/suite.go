package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/socialbroker/broker/storage"
)

// Run is the storage conformance suite: every behaviour the broker relies
// on, run against a store from newStore (a fresh, empty, migrated one per
// call).
func Run(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st *storage.Store)
	}{
		{"UsersAndIdentities", testUsersAndIdentities},
		{"IdentityConflictCreatesNothing", testIdentityConflict},
		{"LinkIdentity", testLinkIdentity},
		{"CheckRefresh", testCheckRefresh},
		{"SignIn", testSignIn},
		{"RotateLifecycle", testRotateLifecycle},
		{"RotateConcurrent", testRotateConcurrent},
		{"RotateExpiry", testRotateExpiry},
		{"RevokeAndDelete", testRevokeAndDelete},
		{"UseOnce", testUseOnce},
		{"KeyLockSerialises", testKeyLock},
		{"Cleanup", testCleanup},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func h(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func newUser(t *testing.T, st *storage.Store, provider, subject string) storage.User {
	t.Helper()
	u, err := st.CreateUser(context.Background(), storage.NewUser{
		Now: t0, Profile: map[string]string{"nickname": "n-" + subject},
		Identity: storage.Identity{Provider: provider, Subject: subject},
	})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func newSession(t *testing.T, st *storage.Store, userID, token string) storage.Session {
	t.Helper()
	s, err := st.CreateSession(context.Background(), storage.NewSession{
		UserID: userID, IDP: "kakao", TokenHash: h(token), Now: t0, ExpiresAt: t0.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return s
}

func count(t *testing.T, st *storage.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func testUsersAndIdentities(t *testing.T, st *storage.Store) {
	ctx := context.Background()
	u := newUser(t, st, "kakao", "9007199254740993")
	if len(u.ID) != 26 {
		t.Fatalf("user id %q: got length %d, want 26 (opaque 128-bit)", u.ID, len(u.ID))
	}
	v := newUser(t, st, "kakao", "2")
	if u.ID == v.ID {
		t.Fatal("two users got the same id")
	}
	got, err := st.IdentityUser(ctx, "kakao", "9007199254740993")
	if err != nil || got != u.ID {
		t.Fatalf("IdentityUser = %q, %v; want %q", got, err, u.ID)
	}
	// Same subject at another provider is another identity.
	if _, err := st.IdentityUser(ctx, "naver", "9007199254740993"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("IdentityUser(naver) err = %v, want ErrNotFound", err)
	}
	user, idents, err := st.User(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if user.Profile["nickname"] != "n-9007199254740993" || len(idents) != 1 || idents[0].Subject != "9007199254740993" {
		t.Fatalf("User = %+v %+v", user, idents)
	}
	if _, _, err := st.User(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("User(nobody) err = %v, want ErrNotFound", err)
	}
}

func testIdentityConflict(t *testing.T, st *storage.Store) {
	ctx := context.Background()
	newUser(t, st, "google", "s1")
	_, err := st.CreateUser(ctx, storage.NewUser{Now: t0, Identity: storage.Identity{Provider: "google", Subject: "s1"}})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second CreateUser err = %v, want ErrConflict", err)
	}
	if n := count(t, st, `SELECT count(*) FROM users`); n != 1 {
		t.Fatalf("users after conflict: got %d, want 1 (no half-created user)", n)
	}
	// A used Once also refuses the whole creation.
	once := &storage.Once{Kind: "signup", Hash: h("csrf"), Expires: t0.Add(time.Hour)}
	if _, err := st.CreateUser(ctx, storage.NewUser{Now: t0, Identity: storage.Identity{Provider: "google", Subject: "s2"}, Once: once}); err != nil {
		t.Fatal(err)
	}
	_, err = st.CreateUser(ctx, storage.NewUser{Now: t0, Identity: storage.Identity{Provider: "google", Subject: "s3"}, Once: once})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("CreateUser with a used Once: err = %v, want ErrConflict", err)
	}
	if n := count(t, st, `SELECT count(*) FROM users`); n != 2 {
		t.Fatalf("users: got %d, want 2", n)
	}
}

func testLinkIdentity(t *testing.T, st *storage.Store) {
	ctx := context.Background()
	a := newUser(t, st, "kakao", "a")
	b := newUser(t, st, "kakao", "b")
	sa := newSession(t, st, a.ID, "la")
	sb := newSession(t, st, b.ID, "lb")
	if got, err := st.LinkIdentity(ctx, sa.ID, storage.Identity{Provider: "naver", Subject: "na"}, t0); err != nil || got != a.ID {
		t.Fatalf("link = %q, %v; want %q", got, err, a.ID)
	}
	// Another user's identity: conflict, nothing changes.
	if _, err := st.LinkIdentity(ctx, sb.ID, storage.Identity{Provider: "naver", Subject: "na"}, t0); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("link taken identity: err = %v, want ErrConflict", err)
	}
	if got, _ := st.IdentityUser(ctx, "naver", "na"); got != a.ID {
		t.Fatalf("owner after refused link: got %q, want %q", got, a.ID)
	}
	if _, err := st.LinkIdentity(ctx, "ghost", storage.Identity{Provider: "google", Subject: "g"}, t0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("link from a missing session: err = %v, want ErrNotFound", err)
	}
	// A session that ended (logout, revocation, absolute lifetime) links nothing.
	if err := st.RevokeSession(ctx, sb.ID, t0, "logout"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LinkIdentity(ctx, sb.ID, storage.Identity{Provider: "google", Subject: "gb"}, t0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("link from a revoked session: err = %v, want ErrNotFound", err)
	}
	if _, err := st.LinkIdentity(ctx, sa.ID, storage.Identity{Provider: "google", Subject: "ga"}, t0.Add(24*time.Hour)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("link from an expired session: err = %v, want ErrNotFound", err)
	}
	if n := count(t, st, `SELECT count(*) FROM identities WHERE provider = 'google'`); n != 0 {
		t.Fatalf("identities linked from ended sessions: got %d, want 0", n)
	}
}

// testCheckRefresh: only a session's live token (or its parent within the
// grace while the child is unused) stands for the session; an older
// generation revokes it, as a rotation would.
func testCheckRefresh(t *testing.T, st *storage.Store) {
	ctx := context.Background()
	check := func(tok string, now time.Time) storage.Rotation {
		t.Helper()
		r, err := st.CheckRefresh(ctx, storage.CheckParams{Hash: h(tok), Now: now, Grace: 10 * time.Second, Idle: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	u := newUser(t, st, "kakao", "chk")
	s := newSession(t, st, u.ID, "c0")
	if r := check("c0", t0); r.Outcome != storage.Live || r.SessionID != s.ID || r.UserID != u.ID {
		t.Fatalf("fresh token = %+v, want live for %s", r, s.ID)
	}
	rotate(t, st, "c0", "c1", t0.Add(time.Second))
	if r := check("c0", t0.Add(5*time.Second)); r.Outcome != storage.Live {
		t.Fatalf("parent within the grace = %s, want live", r.Outcome)
	}
	if r := check("c1", t0.Add(5*time.Second)); r.Outcome != storage.Live {
		t.Fatalf("child = %s, want live", r.Outcome)
	}
	rotate(t, st, "c1", "c2", t0.Add(6*time.Second))
	// c0 is now two generations old: a reuse even inside the grace.
	if r := check("c0", t0.Add(7*time.Second)); r.Outcome != storage.Reused {
		t.Fatalf("grandparent = %s, want reused", r.Outcome)
	}
	if r := check("c2", t0.Add(7*time.Second)); r.Outcome != storage.Revoked {
		t.Fatalf("live token after a reuse = %s, want revoked", r.Outcome)
	}
	if r := check("nope", t0); r.Outcome != storage.Unknown {
		t.Fatalf("unknown token = %s, want unknown", r.Outcome)
	}
	// A parent past the grace is a reuse.
	u2 := newUser(t, st, "kakao", "chk2")
	newSession(t, st, u2.ID, "d0")
	rotate(t, st, "d0", "d1", t0)
	if r := check("d0", t0.Add(11*time.Second)); r.Outcome != storage.Reused {
		t.Fatalf("parent past the grace = %s, want reused", r.Outcome)
	}
	// Idle and absolute lifetimes end the session for this check too.
	u3 := newUser(t, st, "kakao", "chk3")
	newSession(t, st, u3.ID, "e0")
	if r := check("e0", t0.Add(time.Hour)); r.Outcome != storage.Expired {
		t.Fatalf("idle session = %s, want expired", r.Outcome)
	}
}

func rotate(t *testing.T, st *storage.Store, tok, child string, now time.Time) storage.Rotation {
	t.Helper()
	r, err := st.Rotate(context.Background(), storage.RotateParams{
		Hash: h(tok), Child: h(child), Now: now, Grace: 10 * time.Second, Idle: time.Hour,
	})
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return r
}

func testRotateLifecycle(t *testing.T, st *storage.Store) {
	u := newUser(t, st, "kakao", "r")
	s := newSession(t, st, u.ID, "t0")
	r := rotate(t, st, "t0", "t1", t0.Add(time.Minute))
	if r.Outcome != storage.Rotated || r.SessionID != s.ID || r.UserID != u.ID || r.IDP != "kakao" || !r.ExpiresAt.Equal(s.ExpiresAt) {
		t.Fatalf("first rotation = %+v, want rotated of session %s expiring %v", r, s.ID, s.ExpiresAt)
	}
	// A retry of the parent within the grace: the same child, nothing revoked.
	if r := rotate(t, st, "t0", "t1", t0.Add(time.Minute+5*time.Second)); r.Outcome != storage.Retried {
		t.Fatalf("retry within grace = %s, want retried", r.Outcome)
	}
	if r := rotate(t, st, "t1", "t2", t0.Add(2*time.Minute)); r.Outcome != storage.Rotated {
		t.Fatalf("child rotation = %s, want rotated", r.Outcome)
	}
	// The grandparent, once its child was rotated, is a reuse even within the grace.
	if r := rotate(t, st, "t0", "t1", t0.Add(2*time.Minute)); r.Outcome != storage.Reused {
		t.Fatalf("replay of a token whose child was used = %s, want reused", r.Outcome)
	}
	// Reuse revoked the whole session: the live token is dead too.
	if r := rotate(t, st, "t2", "t3", t0.Add(3*time.Minute)); r.Outcome != storage.Revoked {
		t.Fatalf("live token after reuse = %s, want revoked", r.Outcome)
	}
	if r := rotate(t, st, "nope", "x", t0); r.Outcome != storage.Unknown {
		t.Fatalf("unknown token = %s, want unknown", r.Outcome)
	}

	// Reuse after the grace, on a fresh session.
	s2 := newSession(t, st, u.ID, "u0")
	rotate(t, st, "u0", "u1", t0.Add(time.Minute))
	if r := rotate(t, st, "u0", "u1", t0.Add(time.Minute+11*time.Second)); r.Outcome != storage.Reused {
		t.Fatalf("retry after grace = %s, want reused", r.Outcome)
	}
	got, err := st.Session(context.Background(), s2.ID)
	if err != nil || got.RevokedAt == nil {
		t.Fatalf("session after reuse: %+v %v, want revoked", got, err)
	}
}

func testRotateConcurrent(t *testing.T, st *storage.Store) {
	u := newUser(t, st, "kakao", "c")
	s := newSession(t, st, u.ID, "p")
	const n = 50
	var wg sync.WaitGroup
	outcomes := make(chan storage.Outcome, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := st.Rotate(context.Background(), storage.RotateParams{
				Hash: h("p"), Child: h("c1"), Now: t0.Add(time.Second), Grace: 10 * time.Second, Idle: time.Hour,
			})
			if err != nil {
				t.Error(err)
				return
			}
			outcomes <- r.Outcome
		}()
	}
	wg.Wait()
	close(outcomes)
	got := map[storage.Outcome]int{}
	for o := range outcomes {
		got[o]++
	}
	if got[storage.Rotated] != 1 || got[storage.Retried] != n-1 {
		t.Fatalf("outcomes = %v, want 1 rotated and %d retried", got, n-1)
	}
	if live := count(t, st, `SELECT count(*) FROM refresh_tokens WHERE session_id = $1 AND rotated_at IS NULL`, s.ID); live != 1 {
		t.Fatalf("live tokens = %d, want exactly 1", live)
	}
}

func testRotateExpiry(t *testing.T, st *storage.Store) {
	u := newUser(t, st, "kakao", "e")
	newSession(t, st, u.ID, "a0")
	// Rotation never extends the absolute lifetime: rotate just before the end, then past it.
	now := t0
	tok := "a0"
	for i := 1; i <= 3; i++ {
		now = now.Add(50 * time.Minute) // inside the 1h idle window each time
		next := fmt.Sprintf("a%d", i)
		if r := rotate(t, st, tok, next, now); r.Outcome != storage.Rotated {
			t.Fatalf("rotation %d = %s", i, r.Outcome)
		}
		tok = next
	}
	// The first token, rotated over two hours ago, replayed into the active
	// session: a theft, not an idle session.
	if r := rotate(t, st, "a0", "a1", now); r.Outcome != storage.Reused {
		t.Fatalf("old token replayed into an active session = %s, want reused", r.Outcome)
	}
	newSession(t, st, u.ID, "c0")
	if r := rotate(t, st, "c0", "late", t0.Add(24*time.Hour)); r.Outcome != storage.Expired {
		t.Fatalf("after the absolute lifetime = %s, want expired", r.Outcome)
	}
	// Idle: unused for longer than the idle lifetime.
	newSession(t, st, u.ID, "b0")
	if r := rotate(t, st, "b0", "b1", t0.Add(time.Hour)); r.Outcome != storage.Expired {
		t.Fatalf("after the idle lifetime = %s, want expired", r.Outcome)
	}
	if r := rotate(t, st, "b0", "b1", t0.Add(59*time.Minute)); r.Outcome != storage.Rotated {
		t.Fatalf("inside the idle lifetime = %s, want rotated", r.Outcome)
	}
}

func testRevokeAndDelete(t *testing.T, st *storage.Store) {
	ctx := context.Background()
	u := newUser(t, st, "kakao", "d")
	s1 := newSession(t, st, u.ID, "x1")
	s2 := newSession(t, st, u.ID, "x2")
	if err := st.RevokeSession(ctx, s1.ID, t0, "logout"); err != nil {
		t.Fatal(err)
	}
	if r := rotate(t, st, "x1", "x1c", t0); r.Outcome != storage.Revoked {
		t.Fatalf("revoked session = %s, want revoked", r.Outcome)
	}
	if r := rotate(t, st, "x2", "x2c", t0); r.Outcome != storage.Rotated {
		t.Fatalf("other session = %s, want rotated", r.Outcome)
	}
	n, err := st.RevokeUserSessions(ctx, u.ID, t0, "all")
	if err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions = %d, %v; want 1", n, err)
	}
	got, err := st.Session(ctx, s2.ID)
	if err != nil || got.RevokedAt == nil {
		t.Fatalf("Session(s2) = %+v, %v; want the revoked session", got, err)
	}
	if err := st.DeleteUser(ctx, u.ID, t0, "self"); err != nil {
		t.Fatal(err)
	}
	for table, q := range map[string]string{
		"identities": `SELECT count(*) FROM identities`, "sessions": `SELECT count(*) FROM sessions`,
		"refresh_tokens": `SELECT count(*) FROM refresh_tokens`,
	} {
		if n := count(t, st, q); n != 0 {
			t.Errorf("%s after DeleteUser: %d rows, want 0", table, n)
		}
	}
	if _, err := st.CreateSession(ctx, storage.NewSession{UserID: u.ID, IDP: "kakao", TokenHash: h("z"), Now: t0, ExpiresAt: t0.Add(time.Hour)}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("session for a deleted user: err = %v, want ErrNotFound", err)
	}
}

func testUseOnce(t *testing.T, st *storage.Store) {
	ctx := context.Background()
	o := storage.Once{Kind: "state", Hash: h("s"), Expires: t0.Add(time.Minute)}
	if err := st.UseOnce(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := st.UseOnce(ctx, o); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second use: err = %v, want ErrConflict", err)
	}
	o.Kind = "id_token"
	if err := st.UseOnce(ctx, o); err != nil {
		t.Fatalf("same hash, other kind: %v", err)
	}
	if n, err := st.CleanupOnce(ctx, t0.Add(2*time.Minute)); err != nil || n != 2 {
		t.Fatalf("CleanupOnce = %d, %v; want 2", n, err)
	}
}

func testKeyLock(t *testing.T, st *storage.Store) {
	ctx := context.Background()
	var mu sync.Mutex
	inside, maxInside := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := st.WithKeyLock(ctx, func(tx storage.KeyTx) error {
				mu.Lock()
				inside++
				if inside > maxInside {
					maxInside = inside
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				keys, err := tx.SigningKeys(ctx)
				if err != nil {
					return err
				}
				if len(keys) == 0 { // only the first one in creates
					err = tx.InsertSigningKey(ctx, storage.SigningKey{KID: fmt.Sprintf("k%d", i), Alg: "RS256",
						PublicDER: []byte{1}, PrivateEnc: []byte{2}, CreatedAt: t0, ActivatesAt: t0})
				}
				mu.Lock()
				inside--
				mu.Unlock()
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if maxInside != 1 {
		t.Fatalf("at most one holder expected, saw %d at once", maxInside)
	}
	keys, err := st.SigningKeys(ctx)
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].PublicDER, []byte{1}) {
		t.Fatalf("keys = %+v, %v; want exactly one", keys, err)
	}
}

func testCleanup(t *testing.T, st *storage.Store) {
	ctx := context.Background()
	u := newUser(t, st, "kakao", "cl")
	live := newSession(t, st, u.ID, "live")
	dead := newSession(t, st, u.ID, "dead")
	if err := st.RevokeSession(ctx, dead.ID, t0, "logout"); err != nil {
		t.Fatal(err)
	}
	n, err := st.Cleanup(ctx, t0.Add(2*time.Hour), 3*time.Hour, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("Cleanup = %d, %v; want 1 (the revoked session)", n, err)
	}
	if _, err := st.Session(ctx, live.ID); err != nil {
		t.Fatalf("live session gone: %v", err)
	}
	if n := count(t, st, `SELECT count(*) FROM refresh_tokens WHERE hash = $1`, h("dead")); n != 0 {
		t.Fatalf("revoked session's tokens left: got %d, want 0", n)
	}
}

func testSignIn(t *testing.T, st *storage.Store) {
	ctx := context.Background()
	in := storage.SignIn{Provider: "naver", Subject: "n1", GrantEnc: []byte("g1"), TokenHash: h("s0"), Now: t0, ExpiresAt: t0.Add(time.Hour)}
	if _, err := st.SignIn(ctx, in); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown identity: err = %v, want ErrNotFound", err)
	}
	if n := count(t, st, `SELECT count(*) FROM sessions`); n != 0 {
		t.Fatalf("sessions after a refused sign-in = %d, want 0", n)
	}
	u, err := st.CreateUser(ctx, storage.NewUser{Now: t0, Identity: storage.Identity{Provider: "naver", Subject: "n1", GrantEnc: []byte("g0")}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := st.SignIn(ctx, in)
	if err != nil || sess.UserID != u.ID || sess.IDP != "naver" {
		t.Fatalf("SignIn = %+v, %v; want a session of %s", sess, err, u.ID)
	}
	if r := rotate(t, st, "s0", "s1", t0.Add(time.Minute)); r.Outcome != storage.Rotated || r.SessionID != sess.ID {
		t.Fatalf("the sign-in's token: %+v", r)
	}
	grant := func() string {
		_, ids, err := st.User(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return string(ids[0].GrantEnc)
	}
	if g := grant(); g != "g1" {
		t.Fatalf("grant = %q, want the new g1", g)
	}
	in.GrantEnc, in.TokenHash = nil, h("s9")
	if _, err := st.SignIn(ctx, in); err != nil {
		t.Fatal(err)
	}
	if g := grant(); g != "g1" {
		t.Fatalf("grant after a sign-in without one = %q, want g1 kept", g)
	}
}
