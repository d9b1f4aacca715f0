package storage_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/socialbroker/broker/storage"
	"github.com/socialbroker/broker/storage/storagetest"
)

func randHash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// benchSessions creates n users with one session each and returns each
// session's first token hash.
func benchSessions(b *testing.B, st *storage.Store, n int, now time.Time) [][]byte {
	b.Helper()
	ctx := context.Background()
	out := make([][]byte, n)
	for i := range out {
		u, err := st.CreateUser(ctx, storage.NewUser{Now: now, Identity: storage.Identity{Provider: "kakao", Subject: storage.NewID()}})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = randHash()
		if _, err := st.CreateSession(ctx, storage.NewSession{UserID: u.ID, IDP: "kakao", TokenHash: out[i], Now: now, ExpiresAt: now.Add(720 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkRotate measures Store.Rotate (one broker_rotate_refresh
// statement: lock token and session, mark the token rotated, insert the
// child, touch the session, commit) against the pgtest Postgres. Every
// iteration rotates a live token, as the token endpoint does.
//
// pgtest runs its cluster with fsync=off and synchronous_commit=off (Fast
// mode), so commits cost no disk flush here: cmd/brokerbench measures the
// durable configuration.
func BenchmarkRotate(b *testing.B) {
	ctx := context.Background()
	st := storagetest.NewStore(b)
	now := time.Now()

	b.Run("sequential", func(b *testing.B) {
		cur := benchSessions(b, st, 1, now)[0]
		b.ReportAllocs()
		for b.Loop() {
			child := randHash()
			r, err := st.Rotate(ctx, storage.RotateParams{Hash: cur, Child: child, Now: now, Grace: 10 * time.Second, Idle: 168 * time.Hour})
			if err != nil || r.Outcome != storage.Rotated {
				b.Fatalf("rotate: %v %v", r.Outcome, err)
			}
			cur = child
		}
	})

	// parallel: GOMAXPROCS×p goroutines, each rotating its own session.
	for _, p := range []int{1, 16} {
		name := "parallel"
		if p > 1 {
			name = "parallel-x16"
		}
		b.Run(name, func(b *testing.B) {
			sessions := make(chan []byte, 1024)
			for _, h := range benchSessions(b, st, 64*p, now) {
				sessions <- h
			}
			b.SetParallelism(p)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				cur := <-sessions
				for pb.Next() {
					child := randHash()
					r, err := st.Rotate(ctx, storage.RotateParams{Hash: cur, Child: child, Now: now, Grace: 10 * time.Second, Idle: 168 * time.Hour})
					if err != nil || r.Outcome != storage.Rotated {
						b.Errorf("rotate: %v %v", r.Outcome, err)
						return
					}
					cur = child
				}
			})
		})
	}
}
