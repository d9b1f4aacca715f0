// Package pgtest gives tests real PostgreSQL databases: one throwaway cluster
// per test binary (started on first use), and a fresh, empty database per test,
// so tests may run with t.Parallel.
//
// Use it from TestMain, so that the cluster is stopped and its directory
// removed when the tests are done:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// When DATABASE_URL is set, no cluster is started: databases are created on
// that server (PostgreSQL ≥ 13), with DATABASE_URL as the admin connection.
// When neither is available the test fails with the message of
// pglocal.ErrNoServer: a missing database is never a reason to skip.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialbroker/broker/internal/pglocal"
)

const opTimeout = 2 * time.Minute

// shared is the server of this test binary.
var shared struct {
	once     sync.Once
	admin    string           // URL used to create and drop databases
	cluster  *pglocal.Cluster // nil when DATABASE_URL is used
	dir      string           // the cluster's directory, removed by Main
	strategy string           // CREATE DATABASE option for copies
	err      error            // why there is no server
}

// templates are the prepared databases of NewTemplatedDatabase, by key.
var templates struct {
	mu sync.Mutex
	m  map[string]*template
}

type template struct {
	mu   sync.Mutex // held while the template is built
	name string     // set once built
	err  error      // setup failed: later callers fail at once with it
}

// Main runs the tests, then stops the shared cluster and removes its
// directory (or, with DATABASE_URL, drops the templates it made), and exits.
func Main(m *testing.M) {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func shutdown() error {
	defer closeAdminConns()
	if shared.cluster != nil {
		err := shared.cluster.Stop()
		if rmErr := os.RemoveAll(shared.dir); err == nil {
			err = rmErr
		}
		return err
	}
	if shared.admin == "" {
		return nil
	}
	// An external server outlives us: drop what we left there.
	templates.mu.Lock()
	defer templates.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for _, tpl := range templates.m {
		if tpl.name != "" {
			if err := dropDatabase(ctx, shared.admin, tpl.name); err != nil {
				return err
			}
		}
	}
	return nil
}

// adminURL starts the shared cluster on first use.
func adminURL(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		if u := os.Getenv("DATABASE_URL"); u != "" {
			shared.admin = u
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		dir, c, err := startCluster(ctx, pglocal.Options{Fast: true})
		if err != nil {
			shared.err = err
			return
		}
		shared.dir, shared.cluster, shared.admin = dir, c, c.URL("postgres")
		// PostgreSQL 15 copies a database by writing all of it to the WAL
		// (WAL_LOG), 5–20× slower here than copying its files (FILE_COPY),
		// whose checkpoints cost little with fsync=off. An external server
		// (DATABASE_URL) keeps its default.
		var version int
		if err := queryRow(ctx, shared.admin, "SELECT current_setting('server_version_num')::int", &version); err != nil {
			shared.err = err
		} else if version >= 150000 {
			shared.strategy = " STRATEGY FILE_COPY"
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.admin
}

// startCluster starts a cluster in a new temporary directory, which it
// removes when the start fails.
func startCluster(ctx context.Context, o pglocal.Options) (dir string, c *pglocal.Cluster, err error) {
	if dir, err = newClusterDir(); err != nil {
		return "", nil, err
	}
	o.Dir = dir
	if c, err = pglocal.Start(ctx, o); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, c, nil
}

const (
	dirPrefix = "pgtest-"
	ownerFile = "owner.pid" // in each cluster directory: the pid of the test binary
)

var sweepOnce sync.Once

// newClusterDir makes a directory for a cluster: under /dev/shm when it is a
// roomy tmpfs (databases are created there several times faster than on a
// disk), else under os.TempDir(). Directories left by test binaries that died
// before Main could remove them (Ctrl-C, -timeout) are removed first; their
// servers died with them.
func newClusterDir() (string, error) {
	parent := os.TempDir()
	var st syscall.Statfs_t
	const tmpfsMagic, minFree = 0x01021994, 1 << 30
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Type == tmpfsMagic && st.Bavail*uint64(st.Bsize) >= minFree {
		parent = "/dev/shm"
	}
	sweepOnce.Do(func() { sweep(parent) })
	dir, err := os.MkdirTemp(parent, dirPrefix)
	if err != nil {
		return "", err
	}
	// MkdirTemp makes it 0700; as root, the server runs as the user postgres,
	// which must be able to reach the data directory inside.
	if err = os.Chmod(dir, 0o755); err == nil {
		err = os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// sweep removes the cluster directories in parent whose test binary is gone.
func sweep(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or just being made
		}
		pid, err := strconv.Atoi(string(b))
		if err == nil && pid > 0 && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// NewDatabase returns the URL of a new, empty database that only this test
// uses; it is dropped (WITH (FORCE)) at t.Cleanup.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, adminURL(t), "template0")
}

// NewTemplatedDatabase returns the URL of a new database that only this test
// uses, copied from a template prepared once per key: the first call for a key
// creates the template database and runs setup on it (e.g. migrations); later
// calls copy it (CREATE DATABASE … TEMPLATE), which is much faster than
// running setup again. Callers with the same key wait while it is built; a
// setup error fails them all.
//
// setup must close every connection it opens (pool.Close, conn.Close) before
// it returns: PostgreSQL cannot copy a database anyone is connected to. After
// setup, the template is closed to connections and leftover sessions are
// terminated, so a leak cannot break the copies, but the leaked pool will
// see errors.
func NewTemplatedDatabase(t testing.TB, key string, setup func(ctx context.Context, url string) error) string {
	t.Helper()
	admin := adminURL(t)

	templates.mu.Lock()
	if templates.m == nil {
		templates.m = map[string]*template{}
	}
	tpl := templates.m[key]
	if tpl == nil {
		tpl = &template{}
		templates.m[key] = tpl
	}
	templates.mu.Unlock()

	name, err := tpl.get(admin, setup)
	if err != nil {
		t.Fatalf("pgtest: template %q: %v", key, err)
	}
	return newDatabase(t, admin, name)
}

// get returns the template's name, building it first if no caller has.
func (tpl *template) get(admin string, setup func(ctx context.Context, url string) error) (string, error) {
	tpl.mu.Lock()
	defer tpl.mu.Unlock() // also when setup panics or calls runtime.Goexit (t.FailNow)
	if tpl.name == "" && tpl.err == nil {
		tpl.name, tpl.err = buildTemplate(admin, setup)
	}
	return tpl.name, tpl.err
}

func buildTemplate(admin string, setup func(ctx context.Context, url string) error) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	name := "tpl_" + randomHex()
	if err := exec(ctx, admin, "CREATE DATABASE "+ident(name)+" TEMPLATE template0"+shared.strategy); err != nil {
		return "", err
	}
	err := setup(ctx, databaseURL(admin, name))
	if err != nil {
		err = fmt.Errorf("setup: %w", err)
	} else {
		err = exec(ctx, admin,
			"ALTER DATABASE "+ident(name)+" WITH ALLOW_CONNECTIONS false",
			"SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = "+literal(name))
	}
	if err != nil {
		if dropErr := dropDatabase(ctx, admin, name); dropErr != nil {
			err = fmt.Errorf("%w (and %w)", err, dropErr)
		}
		return "", err
	}
	return name, nil
}

// NewCluster starts a dedicated cluster, for tests that stop, kill and
// restart the database (fault tests). It is stopped and removed at t.Cleanup.
func NewCluster(t testing.TB) *pglocal.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	dir, c, err := startCluster(ctx, pglocal.Options{Fast: true, MaxConns: 50, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return c
}

// newDatabase creates a database copied from the database from and drops it at t.Cleanup.
func newDatabase(t testing.TB, admin, from string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	name := "t_" + randomHex()
	if err := exec(ctx, admin, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(from)+shared.strategy); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return databaseURL(admin, name)
}

func dropDatabase(ctx context.Context, admin, name string) error {
	return exec(ctx, admin, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)")
}

// exec runs statements, in order, on an admin connection.
func exec(ctx context.Context, admin string, stmts ...string) error {
	return withAdmin(ctx, admin, func(conn *pgx.Conn) error {
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
}

func queryRow(ctx context.Context, admin, sql string, dest ...any) error {
	return withAdmin(ctx, admin, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, sql).Scan(dest...)
	})
}

// adminConns keeps a few idle admin connections: connecting costs about as
// much as creating a database.
var adminConns struct {
	mu   sync.Mutex
	idle map[string][]*pgx.Conn // by admin URL
}

const maxIdleAdminConns = 4

// withAdmin runs fn on an idle admin connection, or a new one.
func withAdmin(ctx context.Context, admin string, fn func(*pgx.Conn) error) error {
	adminConns.mu.Lock()
	var conn *pgx.Conn
	if idle := adminConns.idle[admin]; len(idle) > 0 {
		conn = idle[len(idle)-1]
		adminConns.idle[admin] = idle[:len(idle)-1]
	}
	adminConns.mu.Unlock()
	if conn == nil {
		var err error
		if conn, err = pgx.Connect(ctx, admin); err != nil {
			return err
		}
	}
	err := fn(conn)
	adminConns.mu.Lock()
	defer adminConns.mu.Unlock()
	if conn.IsClosed() || conn.PgConn().TxStatus() != 'I' || len(adminConns.idle[admin]) >= maxIdleAdminConns {
		conn.Close(context.Background())
		return err
	}
	if adminConns.idle == nil {
		adminConns.idle = map[string][]*pgx.Conn{}
	}
	adminConns.idle[admin] = append(adminConns.idle[admin], conn)
	return err
}

func closeAdminConns() {
	adminConns.mu.Lock()
	defer adminConns.mu.Unlock()
	for _, conns := range adminConns.idle {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}
	adminConns.idle = nil
}

// databaseURL is admin with its database replaced by name. admin is a URL
// (postgres://…) or a keyword/value string (host=… user=…).
func databaseURL(admin, name string) string {
	if u, err := url.Parse(admin); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path, u.RawPath = "/"+name, ""
		return u.String()
	}
	return admin + " dbname=" + name // later keywords win; names are [a-z0-9_]
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

func ident(s string) string   { return pgx.Identifier{s}.Sanitize() }
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
