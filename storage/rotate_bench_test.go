package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/internal/pglocal"
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

// pgCPU returns a function reading the CPU time (user+system) of the whole
// Postgres cluster behind st: the postmaster, its live children and, via
// the postmaster's cutime/cstime, the children that exited. It returns nil
// when the server's processes are not visible (a remote DATABASE_URL).
func pgCPU(b *testing.B, st *storage.Store) func() time.Duration {
	b.Helper()
	var dir string
	if err := st.Pool().QueryRow(context.Background(), `SELECT current_setting('data_directory')`).Scan(&dir); err != nil {
		return nil
	}
	pidFile, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(pidFile), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil
	}
	// /proc/<pid>/stat fields after "(comm)": state ppid … utime(14) stime cutime cstime.
	stat := func(pid int) (ppid int, self, children int64, ok bool) {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, 0, 0, false
		}
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		if len(f) < 15 {
			return 0, 0, 0, false
		}
		n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		return int(n(1)), n(11) + n(12), n(13) + n(14), true
	}
	if _, _, _, ok := stat(postmaster); !ok {
		return nil
	}
	const hz = 100 // USER_HZ
	return func() time.Duration {
		_, self, children, _ := stat(postmaster)
		total := self + children
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if ppid, self, _, ok := stat(pid); ok && ppid == postmaster {
				total += self
			}
		}
		return time.Duration(total) * time.Second / hz
	}
}

// benchRotate runs the sequential and parallel rotation benchmarks on st.
// Each iteration rotates a live token, as the token endpoint does, and
// reports the Postgres cluster's CPU time per rotation (pg-cpu-µs/op; 10 ms
// resolution, so only meaningful over a second or more of -benchtime).
func benchRotate(b *testing.B, st *storage.Store) {
	ctx := context.Background()
	now := time.Now()
	cpu := pgCPU(b, st)
	report := func(b *testing.B, start time.Duration) {
		if cpu != nil && b.N > 0 {
			b.ReportMetric(float64((cpu()-start).Microseconds())/float64(b.N), "pg-cpu-µs/op")
		}
	}
	start := func() time.Duration {
		if cpu == nil {
			return 0
		}
		return cpu()
	}

	b.Run("sequential", func(b *testing.B) {
		cur := benchSessions(b, st, 1, now)[0]
		b.ReportAllocs()
		c0 := start()
		b.ResetTimer()
		for b.Loop() {
			child := randHash()
			r, err := st.Rotate(ctx, storage.RotateParams{Hash: cur, Child: child, Now: now, Grace: 10 * time.Second, Idle: 168 * time.Hour})
			if err != nil || r.Outcome != storage.Rotated {
				b.Fatalf("rotate: %v %v", r.Outcome, err)
			}
			cur = child
		}
		report(b, c0)
	})

	// parallel: GOMAXPROCS×p goroutines, each rotating its own session;
	// x16 is 32 on two cores, like cmd/brokerbench's default clients.
	for _, p := range []int{1, 16} {
		name := "parallel"
		if p > 1 {
			name = fmt.Sprintf("parallel-x%d", p)
		}
		b.Run(name, func(b *testing.B) {
			sessions := make(chan []byte, 1024)
			for _, h := range benchSessions(b, st, 64*p, now) {
				sessions <- h
			}
			b.SetParallelism(p)
			b.ReportAllocs()
			c0 := start()
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
			report(b, c0)
		})
	}
}

// BenchmarkRotate measures Store.Rotate (one broker_rotate_refresh
// statement: lock token and session, mark the token rotated, insert the
// child, touch the session, commit) against the pgtest Postgres.
//
// pgtest runs its cluster with fsync=off and synchronous_commit=off (Fast
// mode): commits cost no WAL flush here. BenchmarkRotateDurable and
// cmd/brokerbench measure the durable configuration.
func BenchmarkRotate(b *testing.B) {
	benchRotate(b, storagetest.NewStore(b))
}

// BenchmarkRotateDurable is BenchmarkRotate on a private cluster with the
// durability settings initdb leaves (fsync, synchronous_commit and
// full_page_writes on), under a directory on disk (os.TempDir, not
// /dev/shm): every commit waits for its WAL flush, as in production.
func BenchmarkRotateDurable(b *testing.B) {
	if testing.Short() {
		b.Skip("starts its own durable cluster")
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "rotate-durable-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	// As root the server runs as the user postgres, which must reach it.
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	cl, err := pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(dir, "pg")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cl.Stop() })
	if err := cl.CreateDatabase(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	st, err := storage.Open(ctx, cl.URL("bench"), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	benchRotate(b, st)
}
