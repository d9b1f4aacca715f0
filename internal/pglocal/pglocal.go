// Package pglocal runs a private PostgreSQL server from the server binaries
// installed on the machine: tests use it for a throwaway cluster, and
// `broker dev` keeps one under ./.broker-dev/pg.
//
// The cluster listens on 127.0.0.1 only, trusts every local connection (user
// "postgres", no password) and has no unix socket. Start runs initdb when the
// directory holds no cluster yet and reuses the cluster otherwise.
//
// When the process runs as root (CI), initdb and postgres run as the OS user
// "postgres", because initdb refuses root. Every directory above the data
// directory must then be searchable by that user; Start says so when one is not.
//
// The server never outlives the process that started it: postgres is started
// directly as a child with a parent-death signal (SIGQUIT, PostgreSQL's
// immediate shutdown), so a crashed, killed or interrupted test binary or
// `broker dev` takes its server down with it.
package pglocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialbroker/broker/internal/childproc"
)

// ErrNoServer says the PostgreSQL server binaries are missing.
var ErrNoServer = errors.New(`pglocal: PostgreSQL server binaries (initdb, postgres) not found: ` +
	`install the Debian package "postgresql" (apt-get install postgresql), or set PG_BIN to the directory holding them`)

// ErrInUse says a live postmaster, from an earlier run, holds the data directory.
var ErrInUse = errors.New("pglocal: data directory is in use by another postmaster")

// Options configure Start.
type Options struct {
	Dir      string                           // data directory parent; created if missing; reused if it already holds a cluster (broker dev restarts)
	Port     int                              // 0 = pick a free loopback port
	Fast     bool                             // tests: fsync=off, synchronous_commit=off, full_page_writes=off (NEVER used by broker dev)
	MaxConns int                              // max_connections; default 200
	Logf     func(format string, args ...any) // optional progress logging
}

// Cluster is a running (or stopped) private PostgreSQL server. Its methods are
// safe for concurrent use.
type Cluster struct {
	bin     string // directory of initdb and postgres
	dir     string // Options.Dir, absolute
	data    string // PGDATA: dir/data
	logPath string // server log: dir/postgres.log
	port    int
	opts    Options
	cred    *syscall.Credential // nil: run as the current user

	mu   sync.Mutex
	proc *childproc.Process // the postmaster; nil while stopped
}

const (
	dataSubdir   = "data"
	logFile      = "postgres.log"
	superuser    = "postgres"
	stopTimeout  = 30 * time.Second
	startTimeout = 2 * time.Minute // when ctx has no deadline
)

// FindBinaries returns the directory holding initdb and postgres. It uses
// $PG_BIN when set (and only it: an explicit choice that is wrong is an error,
// not a reason to pick another version), otherwise the highest version under
// /usr/lib/postgresql/*/bin (Debian, Ubuntu), otherwise PATH. The error wraps
// ErrNoServer.
func FindBinaries() (dir string, err error) {
	return findBinaries(os.Getenv("PG_BIN"), "/usr/lib/postgresql", os.Getenv("PATH"))
}

func findBinaries(pgBin, debianRoot, path string) (string, error) {
	if pgBin != "" {
		if hasServer(pgBin) {
			return pgBin, nil
		}
		return "", fmt.Errorf("%w (PG_BIN=%s holds no initdb and postgres)", ErrNoServer, pgBin)
	}
	versions, _ := filepath.Glob(filepath.Join(debianRoot, "*", "bin"))
	slices.SortFunc(versions, func(a, b string) int { // highest version first
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, d := range versions {
		if hasServer(d) {
			return d, nil
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d != "" && hasServer(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w (searched $PG_BIN, %s/*/bin and $PATH)", ErrNoServer, debianRoot)
}

func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// compareVersions orders "9.6" < "15" < "16.2" numerically; non-numbers sort first.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		x, y := -1, -1
		if i < len(as) {
			if n, err := strconv.Atoi(as[i]); err == nil {
				x = n
			}
		}
		if i < len(bs) {
			if n, err := strconv.Atoi(bs[i]); err == nil {
				y = n
			}
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

// Start creates the cluster under o.Dir if it holds none yet (initdb), starts
// postgres and waits until it accepts connections. ctx bounds only the start:
// the server runs until Stop or Kill, or until this process exits.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, errors.New("pglocal: Options.Dir is empty")
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 200
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	c := &Cluster{bin: bin, dir: dir, data: filepath.Join(dir, dataSubdir), logPath: filepath.Join(dir, logFile), opts: o}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	if c.cred, err = serverCredential(); err != nil {
		return nil, err
	}
	if c.cred != nil {
		if err := reachable(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, err
		}
	}

	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); err == nil {
		c.logf("pglocal: reusing the cluster in %s", c.data)
		if err := checkNotRunning(c.data); err != nil {
			return nil, err
		}
	} else if err := c.initdb(ctx); err != nil {
		return nil, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 1; ; attempt++ {
		c.port = o.Port
		if c.port == 0 {
			if c.port, err = freePort(); err != nil {
				return nil, err
			}
		}
		err = c.start(ctx)
		// A picked port can be taken by someone else before postgres binds it: pick another.
		if err == nil || o.Port != 0 || attempt == 5 || !errors.Is(err, errPortInUse) {
			break
		}
		c.logf("pglocal: port %d was taken, trying another", c.port)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// URL returns the connection URL of a database of the cluster, as the superuser.
func (c *Cluster) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the cluster listens on (127.0.0.1).
func (c *Cluster) Port() int { return c.port }

// CreateDatabase creates an empty database (from template1).
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pglocal: create database %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pglocal: create database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the server down (fast shutdown: SIGINT to the postmaster, which
// rolls back open transactions and closes connections) and waits until it has
// exited. Stopping a stopped cluster does nothing.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stop(syscall.SIGINT)
}

// Kill stops the server immediately (SIGQUIT: immediate shutdown, no
// checkpoint; the next start runs crash recovery), for crash tests.
func (c *Cluster) Kill() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stop(syscall.SIGQUIT)
}

// Restart starts the server again on the same port and data directory,
// stopping it first if it runs. Tests use Stop and Restart to simulate an outage.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stop(syscall.SIGINT); err != nil {
		return err
	}
	return c.start(ctx)
}

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// initdb creates the cluster in c.data. It runs initdb on a scratch
// directory renamed into place when complete, so an interrupted first start
// (Ctrl-C during broker dev) leaves no half-made cluster to trip over later.
func (c *Cluster) initdb(ctx context.Context) error {
	c.logf("pglocal: initdb %s", c.data)
	// An empty data directory (made by hand) is fine; anything else is not ours to touch.
	if err := os.Remove(c.data); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pglocal: %s holds no cluster (no PG_VERSION) and is not empty: %w", c.data, err)
	}
	scratch := c.data + ".initdb"
	if err := os.RemoveAll(scratch); err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(scratch, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pglocal: %w", err)
		}
	}
	args := []string{"-D", scratch, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if c.opts.Fast {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "initdb"), args...)
	cmd.Dir = c.dir
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(scratch)
		return fmt.Errorf("pglocal: initdb %s: %w\n%s", c.data, err, bytes.TrimSpace(out))
	}
	if err := os.Rename(scratch, c.data); err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	return nil
}

var errPortInUse = errors.New("port in use")

// start starts the postmaster on c.port and waits until it is ready. c.mu is held.
func (c *Cluster) start(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	logf, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	defer logf.Close() // the child has its own copy
	logStart, _ := logf.Seek(0, io.SeekEnd)

	args := []string{
		"-D", c.data,
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=", // TCP only: no socket path length limit, nothing in /tmp or /run
		"-c", "max_connections=" + strconv.Itoa(c.opts.MaxConns),
	}
	if c.opts.Fast {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), args...)
	cmd.Dir = c.dir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: c.cred,
		// The kernel sends SIGQUIT (immediate shutdown) to postgres when the
		// thread that forked it exits, see childproc.Start.
		Pdeathsig: syscall.SIGQUIT,
		// Own process group: a Ctrl-C in the terminal of `broker dev` reaches
		// the broker, which stops the server itself (or dies, and then the
		// parent-death signal stops it).
		Setpgid: true,
	}
	p, err := childproc.Start(cmd)
	if err != nil {
		return fmt.Errorf("pglocal: start postgres: %w", err)
	}

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !ready(c.data, p.PID) {
		select {
		case <-p.Done:
			tail := logSince(c.logPath, logStart)
			switch {
			case strings.Contains(tail, "could not create any TCP/IP sockets"), strings.Contains(tail, "could not bind IPv4 address"):
				return fmt.Errorf("pglocal: postgres could not listen on 127.0.0.1:%d: %w\n%s", c.port, errPortInUse, tail)
			case strings.Contains(tail, `lock file "postmaster.pid" already exists`):
				return fmt.Errorf("%w: %s\n%s", ErrInUse, c.data, tail)
			}
			return fmt.Errorf("pglocal: postgres exited during start:\n%s", tail)
		case <-ctx.Done():
			_ = syscall.Kill(p.PID, syscall.SIGQUIT)
			<-p.Done
			return fmt.Errorf("pglocal: postgres did not become ready: %w\n%s", ctx.Err(), logSince(c.logPath, logStart))
		case <-tick.C:
		}
	}
	c.proc = p
	c.logf("pglocal: postgres (pid %d) accepts connections on 127.0.0.1:%d", p.PID, c.port)
	return nil
}

// stop signals the postmaster and waits for it to exit, escalating to SIGKILL
// after stopTimeout. c.mu is held.
func (c *Cluster) stop(sig syscall.Signal) error {
	p := c.proc
	if p == nil {
		return nil
	}
	c.proc = nil
	select {
	case <-p.Done: // it already exited (crashed, or killed from outside)
		return nil
	default:
	}
	if err := syscall.Kill(p.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pglocal: stop postgres (pid %d): %w", p.PID, err)
	}
	select {
	case <-p.Done:
		c.logf("pglocal: postgres (pid %d) stopped", p.PID)
		return nil
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	<-p.Done
	return fmt.Errorf("pglocal: postgres (pid %d) ignored %v for %v and was killed", p.PID, sig, stopTimeout)
}

// ready reports whether data/postmaster.pid is the one of pid and says "ready",
// or "standby" for a hot standby accepting read-only connections (PostgreSQL
// ≥ 10 writes the status on line 8; pg_ctl -w waits for the same).
func ready(data string, pid int) bool {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 || strings.TrimSpace(lines[0]) != strconv.Itoa(pid) {
		return false
	}
	status := strings.TrimSpace(lines[7])
	return status == "ready" || status == "standby"
}

// checkNotRunning fails with ErrInUse when postmaster.pid names a live
// postgres process. A stale file (its process is gone) is left to postgres,
// which replaces it.
func checkNotRunning(data string) error {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return nil
	}
	if !alive(pid) {
		return nil
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) != "postgres" {
		return nil // the pid was reused by something else
	}
	return fmt.Errorf("%w: postgres (pid %d) still runs in %s; stop it (kill -INT %d) and start again", ErrInUse, pid, data, pid)
}

// alive reports whether process pid exists and is not a zombie (an exited
// process nobody has reaped yet, e.g. a postmaster whose parent died).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill
	}
	// "pid (comm) state …"; comm may hold spaces and parentheses.
	_, rest, ok := strings.Cut(string(stat[bytes.LastIndexByte(stat, ')')+1:]), " ")
	return !ok || !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// serverCredential returns nil when not root, and the credential of the OS
// user "postgres" when root (initdb and postgres refuse to run as root).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf(`pglocal: running as root, so the server must run as the OS user "postgres" `+
			`(created by the Debian package "postgresql"): %w`, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pglocal: uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pglocal: gid of postgres: %w", err)
	}
	// Groups is empty: the supplementary groups of root are dropped.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// reachable checks that uid (with primary group gid, no supplementary groups)
// may search dir and every directory above it, as postgres must to reach its
// data directory. ACLs are not considered.
func reachable(dir string, uid, gid int) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pglocal: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		perm := fi.Mode().Perm()
		var bit os.FileMode
		switch {
		case int(st.Uid) == uid:
			bit = 0o100
		case int(st.Gid) == gid:
			bit = 0o010
		default:
			bit = 0o001
		}
		if perm&bit == 0 {
			return fmt.Errorf("pglocal: running as root, the server runs as the OS user postgres (uid %d), "+
				"which cannot reach %s: %s has mode %v; use a directory postgres can reach (e.g. under %s) or chmod o+x %s",
				uid, dir, d, perm, os.TempDir(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// childEnv is the environment minus PG* variables (PGDATA, PGPORT, … would
// change what initdb and postgres do), with messages in English, which start
// relies on when it reads the log.
func childEnv() []string {
	env := []string{"LC_ALL=C"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_ALL=") {
			env = append(env, kv)
		}
	}
	return env
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pglocal: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logSince returns what the server logged after offset, at most the last 4 KiB.
func logSince(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > 4096 {
		offset = fi.Size() - 4096
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}
