package pglocal_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialbroker/broker/internal/pglocal"
	"github.com/socialbroker/broker/internal/pgtest"
)

// helperEnv turns the test binary into a process that starts a cluster in
// the named directory and then waits to be killed (TestServerDiesWithParent).
const helperEnv = "PGLOCAL_TEST_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		helperMain(dir)
		return
	}
	pgtest.Main(m)
}

func helperMain(dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Fast: true}); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("started")
	select {} // until killed
}

// clusterDir returns a new directory for a cluster, removed at the end of the
// test. Not t.TempDir: as root, the server runs as the user postgres, which
// cannot enter t.TempDir's 0700 parent. In /dev/shm when there is one: initdb
// and fsync are much faster on tmpfs.
func clusterDir(t *testing.T) string {
	t.Helper()
	parent := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		parent = "/dev/shm"
	}
	dir, err := os.MkdirTemp(parent, "pglocal-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "pg") // Start creates it
}

func start(t *testing.T, o pglocal.Options) *pglocal.Cluster {
	t.Helper()
	o.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pglocal.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, url)
}

func exec1(t *testing.T, url string, sql string) {
	t.Helper()
	conn, err := connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryInt(t *testing.T, url string, sql string) int {
	t.Helper()
	conn, err := connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	dir := clusterDir(t)
	c := start(t, pglocal.Options{Dir: dir, Fast: true})
	ctx := t.Context()

	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	url := c.URL("app")
	if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/app?sslmode=disable", c.Port()); url != want {
		t.Errorf("URL = %q, want %q", url, want)
	}
	exec1(t, url, "CREATE TABLE kv (k int PRIMARY KEY); INSERT INTO kv VALUES (1), (2)")
	if got := queryInt(t, url, "SELECT count(*) FROM kv"); got != 2 {
		t.Fatalf("got %d rows, want 2", got)
	}
	if got := queryInt(t, url, "SELECT setting::int FROM pg_settings WHERE name = 'max_connections'"); got != 200 {
		t.Errorf("max_connections = %d, want 200", got)
	}

	// A second server cannot take a directory in use.
	if _, err := pglocal.Start(ctx, pglocal.Options{Dir: dir}); !errors.Is(err, pglocal.ErrInUse) {
		t.Fatalf("Start on a directory in use: got %v, want ErrInUse", err)
	}

	// Outage: connecting fails while stopped, works again after Restart, on the same port.
	port := c.Port()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if conn, err := connect(ctx, url); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped cluster")
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Errorf("port after Restart = %d, want %d", c.Port(), port)
	}
	if got := queryInt(t, url, "SELECT count(*) FROM kv"); got != 2 {
		t.Fatalf("after Restart: got %d rows, want 2", got)
	}

	// broker dev restarts: a new Start reuses the cluster in the directory.
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	c2 := start(t, pglocal.Options{Dir: dir, Fast: true, MaxConns: 20})
	if got := queryInt(t, c2.URL("app"), "SELECT count(*) FROM kv"); got != 2 {
		t.Fatalf("after reusing the directory: got %d rows, want 2", got)
	}
	if got := queryInt(t, c2.URL("app"), "SELECT setting::int FROM pg_settings WHERE name = 'max_connections'"); got != 20 {
		t.Errorf("max_connections = %d, want 20", got)
	}
}

// TestKill: after an immediate stop, crash recovery keeps committed data.
// Not Fast: with synchronous_commit=off a crash may lose the last commits.
func TestKill(t *testing.T) {
	t.Parallel()
	c := start(t, pglocal.Options{Dir: clusterDir(t)})
	url := c.URL("postgres")
	exec1(t, url, "CREATE TABLE kv (k int); INSERT INTO kv SELECT generate_series(1, 1000)")
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if conn, err := connect(t.Context(), url); err == nil {
		conn.Close(t.Context())
		t.Fatal("connected to a killed cluster")
	}
	if err := c.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, url, "SELECT count(*) FROM kv"); got != 1000 {
		t.Fatalf("after Kill and Restart: got %d rows, want 1000", got)
	}
}

// TestServerDiesWithParent: when the process that started the server dies
// without stopping it (here SIGKILL), the server goes too.
func TestServerDiesWithParent(t *testing.T) {
	t.Parallel()
	dir := clusterDir(t)
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { helper.Process.Kill(); helper.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "started\n" {
		t.Fatalf("helper said %q (%v)", line, err)
	}

	pidFile, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(pidFile), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatal(err)
	}
	if !pglocal.ProcessAlive(pid) {
		t.Fatalf("postmaster %d is not running", pid)
	}

	// Give the Go runtime of the helper time to create and retire threads: the
	// server must survive that and die only with the process.
	time.Sleep(200 * time.Millisecond)
	if !pglocal.ProcessAlive(pid) {
		t.Fatalf("postmaster %d died while its parent lives", pid)
	}
	helper.Process.Kill()
	helper.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for pglocal.ProcessAlive(pid) {
		if time.Now().After(deadline) {
			syscallKill(pid)
			t.Fatalf("postmaster %d still runs after its parent died", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The directory is usable again.
	c := start(t, pglocal.Options{Dir: dir, Fast: true})
	if got := queryInt(t, c.URL("postgres"), "SELECT 1"); got != 1 {
		t.Fatalf("got %d", got)
	}
}

func syscallKill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

func TestUnreachableDirectoryAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	// t.TempDir's parent is 0700 root: the user postgres cannot enter it.
	_, err := pglocal.Start(t.Context(), pglocal.Options{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("got %v, want an error saying postgres cannot reach the directory", err)
	}
}

func TestFindBinariesMissing(t *testing.T) {
	t.Setenv("PG_BIN", t.TempDir())
	t.Setenv("PATH", "")
	_, err := pglocal.FindBinaries()
	if !errors.Is(err, pglocal.ErrNoServer) || !strings.Contains(err.Error(), `"postgresql"`) {
		t.Fatalf("got %v, want ErrNoServer naming the package postgresql", err)
	}
	if _, err := pglocal.Start(t.Context(), pglocal.Options{Dir: t.TempDir()}); !errors.Is(err, pglocal.ErrNoServer) {
		t.Fatalf("Start: got %v, want ErrNoServer", err)
	}

	// Without PG_BIN: nothing under the Debian root, nothing in PATH.
	if _, err := pglocal.FindBinariesIn("", t.TempDir(), ""); !errors.Is(err, pglocal.ErrNoServer) {
		t.Fatalf("got %v, want ErrNoServer", err)
	}
}

func TestFindBinariesSearchOrder(t *testing.T) {
	fake := func(dir string, names ...string) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	root := t.TempDir()
	fake(filepath.Join(root, "9.6", "bin"), "initdb", "postgres")
	v15 := fake(filepath.Join(root, "15", "bin"), "initdb", "postgres")
	fake(filepath.Join(root, "16", "bin"), "initdb") // incomplete: skipped
	inPath := fake(filepath.Join(t.TempDir(), "bin"), "initdb", "postgres")
	pgBin := fake(filepath.Join(t.TempDir(), "bin"), "initdb", "postgres")

	for _, tc := range []struct {
		name, pgBin, root, path, want string
	}{
		{"PG_BIN first", pgBin, root, inPath, pgBin},
		{"highest complete version", "", root, inPath, v15},
		{"then PATH", "", t.TempDir(), "/nonexistent:" + inPath, inPath},
	} {
		got, err := pglocal.FindBinariesIn(tc.pgBin, tc.root, tc.path)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
