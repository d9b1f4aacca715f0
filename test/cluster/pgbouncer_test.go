package cluster

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialbroker/broker/internal/pgtest"
	"github.com/socialbroker/broker/migrations"
)

// pgbouncerQueryMode is the pgx setting brokers behind PgBouncer's
// transaction pooling use (docs/operating.md): statement descriptions are
// cached per connection and statements are unnamed, so nothing outlives a
// transaction on a server connection. pgx's default (named prepared
// statements) needs PgBouncer ≥ 1.21 with max_prepared_statements; "exec"
// cannot encode the broker's jsonb parameters.
const pgbouncerQueryMode = "default_query_exec_mode=cache_describe"

// startPgBouncer runs PgBouncer in transaction pooling mode in front of
// database db on 127.0.0.1:pgPort and returns its port.
func startPgBouncer(t *testing.T, dir string, pgPort int, db string, poolSize int) int {
	t.Helper()
	bin := need(t, "pgbouncer", "pgbouncer")
	port := freePort(t)
	ini := fmt.Sprintf(`[databases]
%[1]s = host=127.0.0.1 port=%[2]d dbname=%[1]s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %[3]d
unix_socket_dir =
auth_type = trust
auth_file = %[4]s
admin_users = postgres
pool_mode = transaction
default_pool_size = %[5]d
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits
`, db, pgPort, port, filepath.Join(dir, "userlist.txt"), poolSize)
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(`"postgres" ""`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "pgbouncer", filepath.Join(dir, "pgbouncer.log"), postgresCredential(t), bin, path)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return port
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("pgbouncer did not start: %v\n%s", p.Err, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPgBouncerTransactionPooling runs brokers through PgBouncer in
// transaction pooling mode: two brokers migrating an empty database at
// once, a login and refreshes, a key rotation, and the refresh throughput
// against a broker on a direct connection in the same run.
func TestPgBouncerTransactionPooling(t *testing.T) {
	needPostgres(t)
	dir := scratch(t)
	pg := pgtest.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := pg.CreateDatabase(ctx, "broker"); err != nil {
		t.Fatal(err)
	}
	bport := startPgBouncer(t, dir, pg.Port(), "broker", 20)
	direct := pg.URL("broker")
	pooled := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/broker?sslmode=disable&%s", bport, pgbouncerQueryMode)

	k := newKeys()
	var brokers []*brokerProc
	var issuers []string
	var emu *provider
	for i, url := range []string{pooled, pooled, direct} {
		port := freePort(t)
		issuer := fmt.Sprintf("http://127.0.0.1:%d", port)
		name := fmt.Sprintf("broker%d", i+1)
		var prov string
		if i == 0 {
			emu = startProvider(t, issuer, "emu", "4242")
			prov = emu.yaml()
		}
		cfg := brokerConf{issuer: issuer, listen: fmt.Sprintf("127.0.0.1:%d", port), dbURL: url, keys: k, providers: prov,
			autoMigrate: i < 2, drain: 0}.write(t, dir, name)
		if i == 2 {
			// The direct broker starts once the schema is there.
			for _, b := range brokers {
				b.waitReady(t, time.Minute)
			}
		}
		brokers = append(brokers, startBroker(t, dir, name, cfg, fmt.Sprintf("127.0.0.1:%d", port)))
		issuers = append(issuers, issuer)
	}
	for _, b := range brokers {
		b.waitReady(t, time.Minute)
	}

	// The two brokers behind PgBouncer migrated the empty database together:
	// each migration once, and no advisory lock left on any server connection.
	conn, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	files, _ := fs.Glob(migrations.FS, "*.sql")
	var versions, locks int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`).Scan(&locks); err != nil {
		t.Fatal(err)
	}
	if versions != len(files) || locks != 0 {
		t.Fatalf("after two brokers migrated through PgBouncer: %d versions recorded (want %d), %d advisory locks held (want 0)", versions, len(files), locks)
	}

	// A login and refreshes through PgBouncer, refreshes on both pooled brokers.
	tok, _ := login(t, issuers[0], emu)
	for i := range 20 {
		st, next, _, err := refresh(ctx, issuers[i%2], tok)
		if st != 200 || err != nil {
			t.Fatalf("refresh %d through PgBouncer: %d %v\n%s", i, st, err, brokers[i%2].tail())
		}
		tok = next
	}

	// Key decisions through PgBouncer: a rotation every broker publishes.
	out := runBroker(t, "keys", "rotate", "--config", brokers[0].config)
	kid := strings.Fields(out)[0]
	waitPublished(t, kid, issuers, 30*time.Second)

	// Refresh throughput: through PgBouncer against the direct broker, same run.
	sessions := createSessions(t, direct, 16)
	direct1 := runLoad(issuers[2], sessions[:8], 3*time.Second, nil)
	bounced := runLoad(issuers[0], sessions[8:], 3*time.Second, nil)
	t.Logf("refresh direct: %v", direct1)
	t.Logf("refresh through PgBouncer (transaction pooling, %s): %v", pgbouncerQueryMode, bounced)
	t.Logf("PgBouncer/direct refresh throughput ratio: %.2f", bounced.rate()/direct1.rate())
	if len(direct1.bad)+len(bounced.bad) > 0 {
		t.Fatalf("failed refreshes: direct %v; pgbouncer %v", direct1, bounced)
	}
}
