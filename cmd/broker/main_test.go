package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker"
	"github.com/socialbroker/broker/internal/pgtest"
	"github.com/socialbroker/broker/storage"
	"github.com/socialbroker/broker/storage/storagetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const key32 = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI" // 32 bytes, URL-safe, unpadded

func writeConfig(t *testing.T, dbURL, listen string) string {
	t.Helper()
	doc := fmt.Sprintf(`issuer: http://%s
listen: %s
database:
  url: ${DATABASE_URL}
cookies:
  hash_key: %s
  block_key: %s
  secure: false
keys:
  encryption_key: %s
  jwks_max_age: 4s
redirects:
  allowed: [https://app.example.com/]
  default: https://app.example.com/
providers:
  - name: kakao
    type: kakao
    client_id: rest-key
`, listen, listen, key32, key32, key32)
	path := filepath.Join(t.TempDir(), "broker.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(t *testing.T, ctx context.Context, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(ctx, args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), err
}

func TestUsageAndVersion(t *testing.T) {
	out, _, err := runCmd(t, context.Background(), nil, "version")
	if err != nil || !strings.HasPrefix(out, "broker ") {
		t.Fatalf("version = %q, %v", out, err)
	}
	for _, args := range [][]string{{}, {"nope"}, {"keys"}, {"serve"}, {"sessions", "revoke", "--config", "x"}} {
		if _, _, err := runCmd(t, context.Background(), nil, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestBadConfigNamesEveryKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	doc := "issuer: ftp://x\ndatabase:\n  url: ${DATABASE_URL}\ncookies: {hash_key: abc, block_key: " + key32 + "}\nkeys: {encryption_key: " + key32 + "}\nredirects: {allowed: [https://a.example/], default: https://a.example/}\nproviders: [{name: k, type: nope, client_id: x}]\nsurprise: 1\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runCmd(t, context.Background(), nil, "serve", "--config", path)
	if err == nil {
		t.Fatal("serve accepted a bad config")
	}
	for _, want := range []string{"issuer:", "database.url: required, but ${DATABASE_URL} is not set", "cookies.hash_key:", "providers[0]", "surprise: unknown key"} {
		if !strings.Contains(stderr+err.Error(), want) {
			t.Errorf("output lacks %q:\n%s\n%v", want, stderr, err)
		}
	}
}

func TestUnreachableDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the database")
	}
	path := writeConfig(t, "", "127.0.0.1:0")
	start := time.Now()
	_, _, err := runCmd(t, context.Background(), map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1:1/db?connect_timeout=1"}, "migrate", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1/db") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("migrate against nothing: %v, want an error naming the database", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

func TestServeKeysSessions(t *testing.T) {
	dbURL := storagetest.NewURL(t)
	env := map[string]string{"DATABASE_URL": dbURL}
	path := writeConfig(t, dbURL, "127.0.0.1:18081")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := runCmd(t, ctx, env, "serve", "--config", path)
		done <- err
	}()
	base := "http://127.0.0.1:18081"
	var ready bool
	for i := 0; i < 100 && !ready; i++ {
		if r, err := http.Get(base + "/readyz"); err == nil {
			ready = r.StatusCode == 200
			r.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !ready {
		t.Fatal("serve never became ready")
	}

	// A client that never finishes its headers (slowloris) is cut off after
	// the read-header timeout (5 s); the others are served meanwhile.
	slow, err := net.Dial("tcp", "127.0.0.1:18081")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slowStart := time.Now()
	if _, err := io.WriteString(slow, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a"); err != nil {
		t.Fatal(err)
	}
	slowClosed := make(chan time.Duration, 1)
	go func() {
		_, _ = io.Copy(io.Discard, slow)
		slowClosed <- time.Since(slowStart)
	}()

	// The server's header limit: an oversized header is refused, not read.
	big, _ := http.NewRequest("GET", base+"/healthz", nil)
	big.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	if r, err := http.DefaultClient.Do(big); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
		if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("64 KiB header: status %d, want 431", r.StatusCode)
		}
	}

	out, _, err := runCmd(t, context.Background(), env, "keys", "rotate", "--config", path)
	if err != nil || !strings.Contains(out, "next") {
		t.Fatalf("keys rotate = %q, %v", out, err)
	}
	newKid := strings.Fields(out)[0]
	out, _, err = runCmd(t, context.Background(), env, "keys", "list", "--config", path)
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, newKid+"\tnext") || !strings.Contains(out, "\tactive\t") {
		t.Fatalf("keys list = %q, %v; want the active key and %s as next, one line each", out, err, newKid)
	}

	// sessions revoke --user ends every session of that user.
	st, err := storage.Open(context.Background(), dbURL, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.CreateUser(context.Background(), storage.NewUser{Now: time.Now(), Identity: storage.Identity{Provider: "kakao", Subject: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, hash := broker.NewRefreshToken()
	if _, err := st.CreateSession(context.Background(), storage.NewSession{UserID: u.ID, IDP: "kakao", TokenHash: hash, Now: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCmd(t, context.Background(), env, "sessions", "revoke", "--user", u.ID, "--config", path)
	if err != nil || !strings.Contains(out, "revoked 1 session") {
		t.Fatalf("sessions revoke = %q, %v", out, err)
	}
	req, _ := http.NewRequest("POST", base+"/auth/token", nil)
	req.Header.Set("Cookie", "refresh_token="+tok)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 401 {
		t.Fatalf("token of a revoked user: %d, want 401", r.StatusCode)
	}

	// The new key is published by the running broker within the refresh interval.
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := http.Get(base + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		r.Body.Close()
		if strings.Contains(b.String(), newKid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new kid %s not published: %s", newKid, b.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The running broker counts the key the CLI made as a rotation it saw.
	if r, err := http.Get(base + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		r.Body.Close()
		if !strings.Contains(b.String(), "broker_key_rotations_total 2") {
			t.Fatalf("broker_key_rotations_total after a CLI rotation: %s", grepLine(b.String(), "broker_key_rotations_total"))
		}
	}

	var d time.Duration
	select {
	case d = <-slowClosed: // the steps above may have taken longer than the timeout
	case <-time.After(time.Until(slowStart.Add(10 * time.Second))):
		select {
		case d = <-slowClosed:
		default:
			t.Fatal("a client that never finished its headers was still connected after 10 s")
		}
	}
	if d < 4*time.Second || d > 10*time.Second {
		t.Fatalf("the slow client was cut off after %v, want the 5 s read-header timeout", d)
	}

	cancel() // SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after shutdown: %v, want nil (exit 0)", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func grepLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return "(none)"
}
