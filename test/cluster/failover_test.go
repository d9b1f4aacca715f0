package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialbroker/broker/internal/pglocal"
)

// TestPostgresFailover runs two brokers on a multi-host URL with
// target_session_attrs=read-write over a primary and its streaming replica
// (pg_basebackup -R), stops the primary under refresh load and promotes
// the replica: requests during the switch get 503 with Retry-After (never
// a 500, never a 401 that ends a live session), and the brokers reach the
// new primary by themselves. It reports the outage window.
func TestPostgresFailover(t *testing.T) {
	bin := needPostgres(t)
	dir := scratch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	primary, err := pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(dir, "primary"), MaxConns: 100, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.Stop() })
	if err := primary.CreateDatabase(ctx, "broker"); err != nil {
		t.Fatal(err)
	}

	// The replica: a base backup with -R (standby.signal and primary_conninfo).
	rdir := filepath.Join(dir, "replica")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		t.Fatal(err)
	}
	cred := postgresCredential(t)
	if cred != nil {
		if err := os.Chown(rdir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	bb := exec.CommandContext(ctx, filepath.Join(bin, "pg_basebackup"), "-D", filepath.Join(rdir, "data"), "-R", "-X", "stream", "-c", "fast",
		"-h", "127.0.0.1", "-p", fmt.Sprint(primary.Port()), "-U", "postgres")
	bb.Env = append(os.Environ(), "LC_ALL=C")
	bb.SysProcAttr = sysProcAttr(cred)
	if out, err := bb.CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	replica, err := pglocal.Start(ctx, pglocal.Options{Dir: rdir, MaxConns: 100, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = replica.Stop() })
	if inRecovery(t, ctx, replica.URL("broker")) != true {
		t.Fatal("the replica is not in recovery")
	}

	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/broker?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		primary.Port(), replica.Port())
	k := newKeys()
	var brokers []*brokerProc
	for i := range 2 {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		name := fmt.Sprintf("b%d", i+1)
		cfg := brokerConf{issuer: "http://" + addr, listen: addr, dbURL: dbURL, keys: k, autoMigrate: true}.write(t, dir, name)
		brokers = append(brokers, startBroker(t, dir, name, cfg, addr))
	}
	for _, b := range brokers {
		b.waitReady(t, time.Minute)
	}
	sessions := createSessions(t, primary.URL("broker"), 8)

	// Refresh load on both brokers; stop the primary and promote the replica.
	stop := make(chan struct{})
	results := make([]*loadResult, len(brokers))
	var wg sync.WaitGroup
	start := time.Now()
	for i, b := range brokers {
		wg.Go(func() { results[i] = runLoad("http://"+b.addr, sessions[i*4:i*4+4], 2*time.Minute, stop) })
	}
	time.Sleep(2 * time.Second)
	stopAt := time.Since(start)
	if err := primary.Stop(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Since(start)
	promote, err := pgx.Connect(ctx, replica.URL("broker"))
	if err != nil {
		t.Fatal(err)
	}
	var promoted bool
	if err := promote.QueryRow(ctx, `SELECT pg_promote(true, 30)`).Scan(&promoted); err != nil || !promoted {
		t.Fatalf("pg_promote: %v %v", promoted, err)
	}
	promote.Close(ctx)
	promotedAt := time.Since(start)
	// Load goes on until every client has succeeded again for a while.
	time.Sleep(6 * time.Second)
	close(stop)
	wg.Wait()

	var all loadResult
	all.statuses = map[int]int{}
	for _, r := range results {
		all.ok += r.ok
		all.bad = append(all.bad, r.bad...)
		all.okAt = append(all.okAt, r.okAt...)
		for s, n := range r.statuses {
			all.statuses[s] += n
		}
		all.elapsed = max(all.elapsed, r.elapsed)
	}
	gap, gapFrom := all.longestGap()
	var firstBad, lastBad time.Duration
	for i, o := range all.bad {
		if i == 0 || o.at < firstBad {
			firstBad = o.at
		}
		lastBad = max(lastBad, o.at)
		if o.status != 503 || o.err != "" {
			t.Errorf("at %v: status %d %s: during a failover only 503 with Retry-After is allowed", o.at.Round(time.Millisecond), o.status, o.err)
		}
	}
	t.Logf("primary stop requested at %v, stopped at %v, replica promoted at %v (pg_promote took %v)",
		stopAt.Round(time.Millisecond), stoppedAt.Round(time.Millisecond), promotedAt.Round(time.Millisecond), (promotedAt - stoppedAt).Round(time.Millisecond))
	t.Logf("load: %v", &all)
	if len(all.bad) > 0 {
		t.Logf("503s from %v to %v", firstBad.Round(time.Millisecond), lastBad.Round(time.Millisecond))
	}
	t.Logf("outage window (longest time without a successful refresh): %v, from %v", gap.Round(time.Millisecond), gapFrom.Round(time.Millisecond))
	if gap > 10*time.Second {
		t.Errorf("outage of %v: longer than reuse_grace, a client retrying a committed rotation would lose its session", gap)
	}

	// Every client's live token still works on either broker, on the new primary.
	if inRecovery(t, ctx, replica.URL("broker")) {
		t.Fatal("the promoted replica is still in recovery")
	}
	for _, r := range results {
		for i, tok := range r.tokens {
			st, _, _, err := refresh(ctx, "http://"+brokers[i%2].addr, tok)
			if st != 200 || err != nil {
				t.Errorf("a live session after the failover: %d %v", st, err)
			}
		}
	}
}

func inRecovery(t *testing.T, ctx context.Context, url string) bool {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var in bool
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&in); err != nil {
		t.Fatal(err)
	}
	return in
}
