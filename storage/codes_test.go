package storage_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/socialbroker/broker/storage"
	"github.com/socialbroker/broker/storage/storagetest"
)

func sum(s string) []byte {
	b := sha256.Sum256([]byte(s))
	return b[:]
}

// nativeSession signs a user in with a native session and stores its code.
func nativeSession(t *testing.T, st *storage.Store, now time.Time, subject, code string) storage.NativeCode {
	t.Helper()
	ctx := context.Background()
	if _, err := st.CreateUser(ctx, storage.NewUser{Now: now, Identity: storage.Identity{Provider: "naver", Subject: subject}}); err != nil {
		t.Fatal(err)
	}
	sess, err := st.SignIn(ctx, storage.SignIn{Provider: "naver", Subject: subject, TokenHash: sum("tok-" + code), Now: now, ExpiresAt: now.Add(time.Hour), Kind: "native"})
	if err != nil {
		t.Fatal(err)
	}
	c := storage.NativeCode{Hash: sum(code), SessionID: sess.ID, ClientID: "com.example.app", RedirectURI: "com.example.app:/cb",
		Challenge: "ch", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := st.CreateCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func sessionState(t *testing.T, st *storage.Store, id string) (exists bool, kind, reason string) {
	t.Helper()
	var r *string
	err := st.Pool().QueryRow(context.Background(), `SELECT kind, revoked_reason FROM sessions WHERE id = $1`, id).Scan(&kind, &r)
	if err != nil {
		return false, "", ""
	}
	if r != nil {
		reason = *r
	}
	return true, kind, reason
}

func TestNativeCodes(t *testing.T) {
	t.Parallel()
	st := storagetest.NewStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	yes := func(storage.NativeCode) bool { return true }
	no := func(storage.NativeCode) bool { return false }

	// Redeemed once, with the session's user and provider; a second use
	// revokes that session.
	c := nativeSession(t, st, t0, "u1", "code1")
	if _, kind, _ := sessionState(t, st, c.SessionID); kind != "native" {
		t.Fatalf("session kind %q, want native", kind)
	}
	got, out, err := st.RedeemCode(ctx, sum("code1"), t0.Add(10*time.Second), yes)
	if err != nil || out != storage.CodeRedeemed || got.SessionID != c.SessionID || got.IDP != "naver" || got.UserID == "" || got.Challenge != "ch" {
		t.Fatalf("first use: %+v %s %v", got, out, err)
	}
	if _, out, _ := st.RedeemCode(ctx, sum("code1"), t0.Add(20*time.Second), yes); out != storage.CodeReplayed {
		t.Fatalf("second use: %s, want replayed", out)
	}
	if ok, _, reason := sessionState(t, st, c.SessionID); !ok || reason != "reuse_detected" {
		t.Fatalf("after a replay the session is %v/%q, want revoked reuse_detected", ok, reason)
	}

	// Refused bindings and expiry take the unredeemed session with them.
	c2 := nativeSession(t, st, t0, "u2", "code2")
	if _, out, _ := st.RedeemCode(ctx, sum("code2"), t0.Add(time.Second), no); out != storage.CodeRefused {
		t.Fatalf("refused: %s", out)
	}
	if ok, _, _ := sessionState(t, st, c2.SessionID); ok {
		t.Fatal("session of a refused code still there")
	}
	if _, out, _ := st.RedeemCode(ctx, sum("code2"), t0.Add(2*time.Second), yes); out != storage.CodeUnknown {
		t.Fatalf("after a refusal: %s, want unknown", out)
	}
	c3 := nativeSession(t, st, t0, "u3", "code3")
	if _, out, _ := st.RedeemCode(ctx, sum("code3"), t0.Add(time.Minute), yes); out != storage.CodeExpired {
		t.Fatalf("at 60 s: %s, want expired", out)
	}
	if ok, _, _ := sessionState(t, st, c3.SessionID); ok {
		t.Fatal("session of an expired code still there")
	}
	if _, out, _ := st.RedeemCode(ctx, sum("nothing"), t0, yes); out != storage.CodeUnknown {
		t.Fatalf("unknown: %s", out)
	}

	// A disabled user's pending session is revoked: its code is refused.
	c4 := nativeSession(t, st, t0, "u4", "code4")
	if err := st.RevokeSession(ctx, c4.SessionID, t0, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, out, _ := st.RedeemCode(ctx, sum("code4"), t0.Add(time.Second), yes); out != storage.CodeRefused {
		t.Fatalf("revoked session: %s, want refused", out)
	}

	// Two redemptions at once: one first use, one replay.
	nativeSession(t, st, t0, "u5", "code5")
	var wg sync.WaitGroup
	outs := make([]storage.CodeOutcome, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, outs[i], _ = st.RedeemCode(ctx, sum("code5"), t0.Add(time.Second), yes)
		}()
	}
	wg.Wait()
	if !(outs[0] == storage.CodeRedeemed && outs[1] == storage.CodeReplayed || outs[1] == storage.CodeRedeemed && outs[0] == storage.CodeReplayed) {
		t.Fatalf("concurrent redemptions: %v", outs)
	}

	// Cleanup: unredeemed expired codes go with their sessions; used ones
	// after keep.
	c6 := nativeSession(t, st, t0, "u6", "code6")
	n, err := st.CleanupCodes(ctx, t0.Add(2*time.Minute), time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("CleanupCodes = %d, %v; want 1 (code6's session)", n, err)
	}
	if ok, _, _ := sessionState(t, st, c6.SessionID); ok {
		t.Fatal("session of an expired unredeemed code kept")
	}
	if n, err := st.CleanupCodes(ctx, t0.Add(2*time.Hour), time.Hour); err != nil || n != 2 {
		t.Fatalf("CleanupCodes later = %d, %v; want 2 (code1, code5)", n, err)
	}
}
