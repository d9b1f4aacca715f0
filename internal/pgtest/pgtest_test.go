package pgtest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialbroker/broker/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Parallel tests get distinct, empty databases: each creates the same table
// and sees only its own row.
func TestNewDatabaseIsolated(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // database → test
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			url := pgtest.NewDatabase(t)
			t.Logf("NewDatabase took %v", time.Since(start))
			conn := connect(t, url)
			ctx := t.Context()

			var db string
			var tables int
			if err := conn.QueryRow(ctx, "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").Scan(&db, &tables); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(db, "t_") || tables != 0 {
				t.Errorf("got database %q with %d tables, want a new t_… database with none", db, tables)
			}
			mu.Lock()
			if other, dup := seen[db]; dup {
				t.Errorf("database %s also given to test %s", db, other)
			}
			seen[db] = t.Name()
			mu.Unlock()

			if _, err := conn.Exec(ctx, "CREATE TABLE owner (name text)"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "INSERT INTO owner VALUES ($1)", t.Name()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // overlap with the other tests
			var names []string
			rows, _ := conn.Query(ctx, "SELECT name FROM owner")
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || len(names) != 1 || names[0] != t.Name() {
				t.Errorf("got rows %v (%v), want only %q", names, err, t.Name())
			}
		})
	}
}

// The database is gone after the test's cleanup, even with a connection open.
func TestNewDatabaseDropped(t *testing.T) {
	var url string
	var leaked *pgx.Conn
	t.Run("use", func(t *testing.T) {
		url = pgtest.NewDatabase(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if leaked, err = pgx.Connect(ctx, url); err != nil { // not closed: DROP … WITH (FORCE) ends it
			t.Fatal(err)
		}
	})
	defer leaked.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a dropped database")
	}
	if !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("got %v, want database does not exist", err)
	}
}

// A templated database has what setup made; setup runs once per key however
// many tests ask at once; copies are independent.
func TestNewTemplatedDatabase(t *testing.T) {
	var setups atomic.Int32
	setup := func(ctx context.Context, url string) error {
		setups.Add(1)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background()) // setup must close its connections
		time.Sleep(100 * time.Millisecond)     // slow setup: the other tests wait for it
		_, err = conn.Exec(ctx, `CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL);
			INSERT INTO users VALUES (1, 'seed')`)
		return err
	}
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			url := pgtest.NewTemplatedDatabase(t, "users-v1", setup)
			t.Logf("NewTemplatedDatabase took %v", time.Since(start))
			conn := connect(t, url)
			ctx := t.Context()
			if _, err := conn.Exec(ctx, "INSERT INTO users VALUES ($1, $2)", 100+i, t.Name()); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Errorf("got %d users, want the seed and this test's", n)
			}
		})
	}
	t.Cleanup(func() {
		if n := setups.Load(); n != 1 {
			t.Errorf("setup ran %d times, want 1", n)
		}
	})
}

// A setup that leaves its connection open still yields usable copies.
func TestNewTemplatedDatabaseLeakySetup(t *testing.T) {
	var leaked *pgx.Conn
	t.Cleanup(func() {
		if leaked != nil {
			leaked.Close(context.Background())
		}
	})
	url := pgtest.NewTemplatedDatabase(t, "leaky", func(ctx context.Context, url string) error {
		var err error
		if leaked, err = pgx.Connect(ctx, url); err != nil {
			return err
		}
		_, err = leaked.Exec(ctx, "CREATE TABLE t (x int)")
		return err
	})
	var n int
	if err := connect(t, url).QueryRow(t.Context(), "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
}

// A fault-test cluster: stop it, connections fail; restart it, data is back.
func TestNewCluster(t *testing.T) {
	t.Parallel()
	c := pgtest.NewCluster(t)
	ctx := t.Context()
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, c.URL("app")).Exec(ctx, "CREATE TABLE kv (k int); INSERT INTO kv VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if conn, err := pgx.Connect(ctx, c.URL("app")); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped cluster")
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	var k int
	if err := connect(t, c.URL("app")).QueryRow(ctx, "SELECT k FROM kv").Scan(&k); err != nil || k != 42 {
		t.Fatalf("after Restart got %d, %v; want 42", k, err)
	}
}

// Without PostgreSQL, a test that needs a database fails (never skips),
// naming the package to install. Run in a child test binary: the shared
// cluster of this one is already decided.
func TestNoServerIsAFailure(t *testing.T) {
	if os.Getenv("PGTEST_NO_SERVER_CHILD") != "" {
		pgtest.NewDatabase(t)
		t.Log("NewDatabase returned")
		return
	}
	child := exec.Command(os.Args[0], "-test.run=^TestNoServerIsAFailure$", "-test.v")
	child.Env = append(os.Environ(), "PGTEST_NO_SERVER_CHILD=1", "PG_BIN="+t.TempDir(), "DATABASE_URL=")
	out, err := child.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--- FAIL: TestNoServerIsAFailure") ||
		!strings.Contains(string(out), `"postgresql"`) || strings.Contains(string(out), "SKIP") {
		t.Fatalf("child test: %v\n%s\nwant a failure naming the package postgresql", err, out)
	}
}

func BenchmarkNewDatabase(b *testing.B) {
	pgtest.NewDatabase(b) // start the cluster outside the timing
	b.ResetTimer()
	for b.Loop() {
		pgtest.NewDatabase(b)
	}
}

func BenchmarkNewTemplatedDatabase(b *testing.B) {
	setup := func(ctx context.Context, url string) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		for i := range 20 { // a schema of some size, like migrations make
			if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE t%d (id bigserial PRIMARY KEY, a text UNIQUE, b jsonb, c timestamptz DEFAULT now());
				CREATE INDEX ON t%d (c)`, i, i)); err != nil {
				return err
			}
		}
		return nil
	}
	pgtest.NewTemplatedDatabase(b, "bench", setup)
	b.ResetTimer()
	for b.Loop() {
		pgtest.NewTemplatedDatabase(b, "bench", setup)
	}
}
