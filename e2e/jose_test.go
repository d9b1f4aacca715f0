package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// joseDir is where test/js lives, from this package's directory.
var joseDir = filepath.Join("..", "test", "js")

// joseResult is one line that verify.mjs prints.
type joseResult struct {
	Name   string         `json:"name"`
	OK     bool           `json:"ok"`
	Kid    string         `json:"kid"`
	Claims map[string]any `json:"claims"`
	Code   string         `json:"code"`
	Error  string         `json:"error"`
}

// joseVerifier is one long-lived `node verify.mjs` process: its remote JWKS
// is created once, so a rotation must be handled by jose's own refetch.
type joseVerifier struct {
	mu     sync.Mutex
	stdin  io.WriteCloser
	lines  chan string
	cmd    *exec.Cmd
	stderr *lockedBuffer
}

// nodeAndJose returns node's path. When node or the installed jose package
// is missing it skips the test loudly, or fails it under CI=true.
func nodeAndJose(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		requireInstalled(t, "node", "apt-get install -y nodejs, then run npm ci in test/js", err)
	}
	if _, err := os.Stat(filepath.Join(joseDir, "node_modules", "jose", "package.json")); err != nil {
		requireInstalled(t, "the jose package (test/js/node_modules)", "run npm ci in test/js", err)
	}
	return node
}

func startJose(t *testing.T, issuer string) *joseVerifier {
	t.Helper()
	node := nodeAndJose(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "verify.mjs")
	cmd.Dir = joseDir
	cmd.Env = append(os.Environ(),
		"BROKER_ISSUER="+issuer,
		"BROKER_AUDIENCE="+audience,
		// jose refetches the JWKS for an unknown kid at most once per
		// cooldown (30 s of real time by default); the test's clock is not
		// real, so no cooldown here.
		"JWKS_COOLDOWN_MS=0",
	)
	var err error
	v := &joseVerifier{cmd: cmd, lines: make(chan string, 1024), stderr: &lockedBuffer{}}
	cmd.Stderr = v.stderr
	if v.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node verify.mjs: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			v.lines <- sc.Text()
		}
		close(v.lines)
	}()
	t.Cleanup(func() {
		_ = v.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: some token was refused
				t.Errorf("verify.mjs exited: %v; stderr: %s", err, v.stderr)
			}
		case <-time.After(20 * time.Second):
			cancel()
			<-done
			t.Errorf("verify.mjs did not exit after its input closed")
		}
		cancel()
	})
	return v
}

// verify sends one case and waits (bounded) for its result.
func (v *joseVerifier) verify(name, tok, issuer, aud string, now time.Time) (joseResult, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	line := jsonLine(map[string]any{
		"name": name, "token": tok, "issuer": issuer, "audience": aud,
		"now": float64(now.UnixMilli()) / 1000,
	})
	if _, err := v.stdin.Write(line); err != nil {
		return joseResult{}, fmt.Errorf("writing to verify.mjs: %v; stderr: %s", err, v.stderr)
	}
	select {
	case s, ok := <-v.lines:
		if !ok {
			return joseResult{}, fmt.Errorf("verify.mjs ended; stderr: %s", v.stderr)
		}
		var r joseResult
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return joseResult{}, fmt.Errorf("verify.mjs printed %q: %v", s, err)
		}
		if r.Name != name {
			return joseResult{}, fmt.Errorf("verify.mjs answered case %q, want %q", r.Name, name)
		}
		return r, nil
	case <-time.After(20 * time.Second):
		return joseResult{}, fmt.Errorf("verify.mjs gave no answer in 20 s; stderr: %s", v.stderr)
	}
}

// The JavaScript jose library (createRemoteJWKSet + jwtVerify, in
// test/js/verify.mjs) against the same cases and rotation as go-oidc and
// jwx, in one node process for the whole suite.
func TestJoseVerifier(t *testing.T) {
	t.Parallel()
	env := newEnv(t)

	// The command-line forms first, while the broker's clock is still the
	// real time that verify.mjs uses without "now": a token as an argument
	// and in ACCESS_TOKEN; exit status 0 when verified, 1 when refused.
	tok := newSession(t, env, env.NewUser(t, "kakao", "2")).accessToken(t)
	for _, c := range []struct {
		name   string
		args   []string
		env    []string
		ok     bool
		status int
	}{
		{name: "argument", args: []string{tok}, ok: true, status: 0},
		{name: "ACCESS_TOKEN", env: []string{"ACCESS_TOKEN=" + tok}, ok: true, status: 0},
		{name: "tampered argument", args: []string{flipByte(tok, 2)}, ok: false, status: 1},
	} {
		r, status := runJoseCLI(t, env.URL, c.args, c.env)
		if r.OK != c.ok || status != c.status {
			t.Errorf("verify.mjs %s: ok %v, exit %d (%+v); want ok %v, exit %d", c.name, r.OK, status, r, c.ok, c.status)
		}
	}

	js := startJose(t, env.URL)
	n := 0
	verifierSuite(t, env, func(_ context.Context, tok, issuer, aud string) error {
		n++
		r, err := js.verify(fmt.Sprintf("case%d", n), tok, issuer, aud, env.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK {
			return fmt.Errorf("%s: %s", r.Code, r.Error)
		}
		if r.Claims["iss"] != env.URL || r.Claims["idp"] != "kakao" || r.Claims["sub"] == nil || r.Kid == "" {
			return fmt.Errorf("verified, but claims %v, kid %q", r.Claims, r.Kid)
		}
		return nil
	})
}

// runJoseCLI runs verify.mjs once with args and extra environment, and
// returns its one result line and exit status.
func runJoseCLI(t *testing.T, issuer string, args, extraEnv []string) (joseResult, int) {
	t.Helper()
	node := nodeAndJose(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"verify.mjs"}, args...)...)
	cmd.Dir = joseDir
	cmd.Env = append(append(os.Environ(), "BROKER_ISSUER="+issuer, "BROKER_AUDIENCE="+audience), extraEnv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	status := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("verify.mjs: %v; stderr: %s", err, stderr.String())
		}
		status = ee.ExitCode()
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var r joseResult
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &r) != nil {
		t.Fatalf("verify.mjs printed %q, want one JSON line; stderr: %s", out, stderr.String())
	}
	return r, status
}
