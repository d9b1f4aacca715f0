package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker"
	"github.com/socialbroker/broker/internal/pglocal"
	"go.yaml.in/yaml/v3"

	"github.com/socialbroker/broker/internal/childproc"
	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/storage"
)

// work is this test binary's scratch directory (the broker binary, configs,
// logs): reachable by the OS user postgres, which runs PgBouncer and
// PostgreSQL when the tests run as root.
var work string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "brokercluster-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	work = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// missing skips the test, loudly, when a program is not installed, or
// fails it under CI.
func missing(t *testing.T, what, pkg string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s is not installed and CI is set: .ci/run installs it (apt-get install -y %s)", what, pkg)
	}
	t.Skipf("SKIPPED: %s is not installed; install it with `apt-get install -y %s` to run this test (under CI=true this is a failure)", what, pkg)
}

// need returns the path of program, from PATH or the Debian sbin directories.
func need(t *testing.T, program, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(program); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		p := filepath.Join(d, program)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	missing(t, program, pkg)
	return ""
}

// needPostgres returns the PostgreSQL server binaries' directory.
func needPostgres(t *testing.T) string {
	t.Helper()
	dir, err := pglocal.FindBinaries()
	if err != nil {
		missing(t, "the PostgreSQL server (initdb, postgres)", "postgresql")
	}
	return dir
}

var built struct {
	once sync.Once
	path string
	err  error
}

// brokerBinary builds ./cmd/broker once per test binary, statically, with
// the Containerfile's documented command.
func brokerBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		out, err := exec.Command(goBin, "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(out)) == "" {
			built.err = fmt.Errorf("go env GOMOD: %v", err)
			return
		}
		dir := filepath.Join(work, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			built.err = err
			return
		}
		path := filepath.Join(dir, "broker")
		cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", path, "./cmd/broker")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/broker: %v\n%s", err, b)
			return
		}
		built.path = path
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// scratch makes a directory under work for one test, reachable by postgres.
func scratch(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(work, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// postgresCredential is the OS user postgres when running as root (PgBouncer
// and PostgreSQL refuse root), else nil.
func postgresCredential(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root, PgBouncer must run as the OS user postgres: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a child process started by a test: it gets SIGKILL should the
// test binary die (childproc), and is stopped at the test's end.
type proc struct {
	*childproc.Process
	name string
	log  string
}

func startProc(t *testing.T, name, logPath string, cred *syscall.Credential, prog string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child writes through its own descriptor
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true, Credential: cred}
	cp, err := childproc.Start(cmd)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{Process: cp, name: name, log: logPath}
	t.Cleanup(func() {
		if err := p.stop(10 * time.Second); err != nil {
			t.Logf("%s: %v", name, err)
		}
	})
	return p
}

func (p *proc) exited() bool { return p.Exited() }

// stop sends SIGTERM and waits up to wait, then kills. It returns the
// process's exit error (nil for status 0).
func (p *proc) stop(wait time.Duration) error {
	if err := p.Stop(wait); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// keys are the secrets every broker of one test shares (cookies sealed by
// one broker are opened by another).
type keys struct{ hash, block, enc string }

func newKeys() keys {
	r := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	return keys{hash: r(64), block: r(32), enc: r(32)}
}

// brokerConf is one broker's config.
type brokerConf struct {
	issuer, listen, dbURL string
	keys                  keys
	providers             string // the providers: block (emulators), or "" for one unused kakao entry
	autoMigrate           bool
	maxConns              int
	drain                 time.Duration
	reuseGrace            time.Duration
}

func (c brokerConf) write(t *testing.T, dir, name string) string {
	t.Helper()
	prov := c.providers
	if prov == "" {
		prov = "  - name: kakao\n    type: kakao\n    client_id: rest-key\n"
	}
	if c.maxConns == 0 {
		c.maxConns = 8
	}
	if c.reuseGrace == 0 {
		c.reuseGrace = 10 * time.Second
	}
	doc := fmt.Sprintf(`issuer: %[1]s
listen: %[2]s
database:
  url: %[3]q
  auto_migrate: %[4]t
  max_conns: %[5]d
cookies:
  hash_key: %[6]s
  block_key: %[7]s
  secure: false
tokens:
  reuse_grace: %[8]s
keys:
  encryption_key: %[9]s
  jwks_max_age: 2s
redirects:
  allowed: [%[1]s/demo/]
  default: %[1]s/demo/
limits:
  per_minute: { login: 0, callback: 0, token: 0 }
shutdown:
  drain: %[10]s
signup:
  mode: auto
providers:
%[11]s`, c.issuer, c.listen, c.dbURL, c.autoMigrate, c.maxConns, c.keys.hash, c.keys.block, c.reuseGrace, c.keys.enc, c.drain, prov)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// brokerProc is one `broker serve` process.
type brokerProc struct {
	*proc
	addr, config string
}

func startBroker(t *testing.T, dir, name, config, addr string) *brokerProc {
	t.Helper()
	p := startProc(t, name, filepath.Join(dir, name+".log"), nil, brokerBinary(t), "serve", "--config", config)
	return &brokerProc{proc: p, addr: addr, config: config}
}

// waitReady waits until the broker's own /readyz answers 200.
func (b *brokerProc) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	c := &http.Client{Timeout: time.Second}
	for {
		if r, err := c.Get("http://" + b.addr + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		if b.exited() {
			t.Fatalf("%s exited during start: %v\n%s", b.name, b.Err, b.tail())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %v:\n%s", b.name, within, b.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runBroker runs a one-shot broker command (migrate, keys rotate, …).
func runBroker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, brokerBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("broker %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// provider is an emulated OAuth2 provider for logins.
type provider struct {
	name string
	em   *fakeidp.Emulator
}

func startProvider(t *testing.T, issuer, name, subject string) *provider {
	t.Helper()
	em, err := fakeidp.Start(fakeidp.Options{
		Kind: fakeidp.OAuth2, ClientID: "cid-" + name, ClientSecret: "secret-" + name,
		RedirectURIs: []string{issuer + "/auth/callback/" + name},
		User:         fakeidp.User{Subject: subject, Nickname: "user " + subject, Email: subject + "@example.com", Name: "User " + subject},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(em.Close)
	return &provider{name: name, em: em}
}

func (p *provider) yaml() string {
	b, err := yaml.Marshal([]any{p.em.ProviderConfig(p.name, false)})
	if err != nil {
		panic(err)
	}
	return indent(string(b))
}

// indent shifts a YAML list under the providers: key.
func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

// client talks to the brokers (through the balancer or directly), without
// following redirects or keeping cookies.
var client = &http.Client{
	Timeout:       15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
}

// hop is one answer of a broker.
type hop struct {
	Step   string
	Status int
	Broker string // HAProxy's X-Broker (the server's name), "" when direct
}

func send(ctx context.Context, method, u, cookie string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, nil, err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b, err
}

func cookieValue(resp *http.Response, name string) string {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// login runs the whole browser login (login start, consent at the
// emulator, callback, first token request) against base and returns the
// live refresh token and the hops.
func login(t *testing.T, base string, p *provider) (string, []hop) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var hops []hop
	resp, _, err := send(ctx, "GET", base+"/auth/login/"+p.name, "")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("login start: %v %v", resp, err)
	}
	hops = append(hops, hop{"login", resp.StatusCode, resp.Header.Get("X-Broker")})
	state := cookieValue(resp, "broker_login")
	cb, err := p.em.Approve(ctx, resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("consent: %v", err)
	}
	resp, body, err := send(ctx, "GET", cb.String(), "broker_login="+state)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %v %v %s", resp, err, body)
	}
	hops = append(hops, hop{"callback", resp.StatusCode, resp.Header.Get("X-Broker")})
	tok := cookieValue(resp, "refresh_token")
	if tok == "" {
		t.Fatal("callback set no refresh cookie")
	}
	st, next, h, err := refresh(ctx, base, tok)
	if err != nil || st != 200 {
		t.Fatalf("first token request: %d %v", st, err)
	}
	hops = append(hops, hop{"token", st, h})
	return next, hops
}

// refresh is POST /auth/token with the refresh cookie: the status, the
// rotated token (or tok when none was set), and the X-Broker header.
func refresh(ctx context.Context, base, tok string) (status int, next, broker string, err error) {
	resp, body, err := send(ctx, "POST", base+"/auth/token", "refresh_token="+tok)
	if err != nil {
		return 0, tok, "", err
	}
	next = tok
	if v := cookieValue(resp, "refresh_token"); v != "" {
		next = v
	}
	if resp.StatusCode == 200 {
		var tb struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(body, &tb) != nil || tb.AccessToken == "" {
			return resp.StatusCode, next, resp.Header.Get("X-Broker"), fmt.Errorf("200 without an access token: %s", body)
		}
	}
	if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
		err = errors.New("503 without Retry-After")
	}
	return resp.StatusCode, next, resp.Header.Get("X-Broker"), err
}

// createSessions makes n users with one live session each, the way the
// broker does, directly in the database; it returns their refresh tokens.
func createSessions(t *testing.T, dbURL string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := storage.Open(ctx, dbURL, storage.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := make([]string, n)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range out {
		now := time.Now()
		u, err := st.CreateUser(ctx, storage.NewUser{Now: now, Identity: storage.Identity{Provider: "kakao", Subject: run + "-" + strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		tok, hash := broker.NewRefreshToken()
		if _, err := st.CreateSession(ctx, storage.NewSession{UserID: u.ID, IDP: "kakao", TokenHash: hash, Now: now, ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		out[i] = tok
	}
	return out
}

// outcome is one request of a load run.
type outcome struct {
	at     time.Duration // since the run started
	status int           // 0: transport error
	err    string
}

// load runs closed-loop refresh clients against base, one session each,
// always sending the newest token, until stop is closed or d has passed.
type loadResult struct {
	ok       int64
	bad      []outcome // everything but 200
	statuses map[int]int
	tokens   []string        // each client's live token at the end
	okAt     []time.Duration // when each 200 arrived, since the start
	elapsed  time.Duration
}

// longestGap is the longest time without a successful answer (from any
// client) between the first and the last success, and when it began.
func (r *loadResult) longestGap() (gap, from time.Duration) {
	ts := slices.Clone(r.okAt)
	slices.Sort(ts)
	for i := 1; i < len(ts); i++ {
		if d := ts[i] - ts[i-1]; d > gap {
			gap, from = d, ts[i-1]
		}
	}
	return gap, from
}

func runLoad(base string, tokens []string, d time.Duration, stop <-chan struct{}) *loadResult {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var ok atomic.Int64
	var mu sync.Mutex
	res := &loadResult{statuses: map[int]int{}, tokens: append([]string(nil), tokens...)}
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() {
			tok := tokens[i]
			for ctx.Err() == nil {
				select {
				case <-stop:
					res.tokens[i] = tok
					return
				default:
				}
				st, next, _, err := refresh(ctx, base, tok)
				if ctx.Err() != nil && st == 0 {
					break
				}
				if st == 200 && err == nil {
					ok.Add(1)
					at := time.Since(start)
					mu.Lock()
					res.okAt = append(res.okAt, at)
					mu.Unlock()
					tok = next
					continue
				}
				o := outcome{at: time.Since(start), status: st}
				if err != nil {
					o.err = err.Error()
				}
				mu.Lock()
				res.bad = append(res.bad, o)
				res.statuses[st]++
				mu.Unlock()
				if st == 503 || st == 0 {
					time.Sleep(50 * time.Millisecond) // keep the same token: a retry within reuse_grace is safe
				}
				if st == 401 {
					break // the session is gone; nothing more from this client
				}
			}
			res.tokens[i] = tok
		})
	}
	wg.Wait()
	res.ok = ok.Load()
	res.elapsed = time.Since(start)
	return res
}

func (r *loadResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r *loadResult) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d ok in %v (%.0f/s)", r.ok, r.elapsed.Round(time.Millisecond), r.rate())
	if len(r.bad) > 0 {
		fmt.Fprintf(&b, ", %d failed %v", len(r.bad), r.statuses)
		for i, o := range r.bad {
			if i == 5 {
				b.WriteString(" …")
				break
			}
			fmt.Fprintf(&b, "; at %v: %d %s", o.at.Round(time.Millisecond), o.status, o.err)
		}
	}
	return b.String()
}

// waitPublished waits until every broker's JWKS lists kid.
func waitPublished(t *testing.T, kid string, bases []string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for _, base := range bases {
		for {
			resp, body, err := send(context.Background(), "GET", base+"/.well-known/jwks.json", "")
			if err == nil && resp.StatusCode == 200 && bytes.Contains(body, []byte(`"`+kid+`"`)) {
				break
			}
			if time.Since(start) > within {
				t.Fatalf("%s does not publish the new key %s within %v", base, kid, within)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return time.Since(start)
}

func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}
