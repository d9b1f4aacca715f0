package broker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/socialbroker/broker/broker/brokertest"
)

// eventsHandler verifies each event with the endpoint's secret, handles it
// once per webhook-id, and answers 2xx only when it is handled.
func eventsHandler(secret string, handle func(typ string, data json.RawMessage) error) (http.Handler, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	handled := map[string]bool{} // use a table with a unique key in production
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil || wh.Verify(body, r.Header) != nil {
			http.Error(w, "unverified", http.StatusBadRequest)
			return
		}
		id := r.Header.Get("webhook-id")
		mu.Lock()
		defer mu.Unlock()
		if handled[id] {
			w.WriteHeader(http.StatusNoContent) // a repeat: already done
			return
		}
		var ev struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		if err := handle(ev.Type, ev.Data); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable) // the broker retries
			return
		}
		handled[id] = true
		w.WriteHeader(http.StatusNoContent)
	}), nil
}

// docBlock returns the fenced block of lang under the heading of
// docs/integrating.md.
func docBlock(t *testing.T, heading, lang string) string {
	t.Helper()
	b, err := os.ReadFile("../docs/integrating.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/integrating.md has no heading %q", heading)
	}
	_, block, ok := strings.Cut(sec, "```"+lang+"\n")
	if !ok {
		t.Fatalf("no %s block under %q", lang, heading)
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// The receivers of docs/integrating.md, run as written: the broker's
// events, repeats included, reach each one, which acts once per event.
func TestEventReceiversOfTheDocs(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("events_doc_test.go")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(src), "// eventsHandler verifies")
	end := strings.Index(string(src), "\n// docBlock returns")
	if got := docBlock(t, "### A receiver in Go", "go"); strings.TrimSpace(got) != strings.TrimSpace(string(src[start:end])) {
		t.Fatalf("the Go receiver in docs/integrating.md differs from eventsHandler here:\n%s", got)
	}

	var mu sync.Mutex
	goActed := map[string]int{}
	h, err := eventsHandler(whsec, func(typ string, data json.RawMessage) error {
		var d struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal(data, &d); err != nil || d.UserID == "" {
			return fmt.Errorf("event %s without user_id", typ)
		}
		mu.Lock()
		goActed[typ]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	goSrv := httptest.NewServer(h)
	t.Cleanup(goSrv.Close)

	nodeURL, nodeLines := startNodeReceiver(t, docBlock(t, "### A receiver in Node", "js"))
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto",
		Extra: eventsConfig("", goSrv.URL, nodeURL)})
	uid := env.NewUser(t, "kakao", "doc-reader")
	if err := env.Store.DeleteUser(context.Background(), uid, env.Clock.Now(), "admin"); err != nil {
		t.Fatal(err)
	}
	deliver(t, env)
	// Every event again: the receivers see repeats and skip them.
	evs, err := env.Store.ListEvents(context.Background(), false, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if _, err := env.Store.Redeliver(context.Background(), e.EventID, env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	deliver(t, env)

	mu.Lock()
	if goActed["user.created"] != 1 || goActed["user.deleted"] != 1 || len(goActed) != 2 {
		t.Errorf("Go receiver acted %v, want user.created and user.deleted once each", goActed)
	}
	mu.Unlock()
	lines := nodeLines()
	types := map[string]int{}
	for _, l := range lines {
		var ev struct{ ID, Type, User string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("node receiver printed %q: %v", l, err)
		}
		if ev.User != uid {
			t.Errorf("node receiver saw user %q, want %q", ev.User, uid)
		}
		types[ev.Type]++
	}
	if types["user.created"] != 1 || types["user.deleted"] != 1 || len(types) != 2 {
		t.Errorf("Node receiver acted %v, want user.created and user.deleted once each", types)
	}
}

// startNodeReceiver runs script with node beside test/js's dependencies
// and returns its URL and a function returning what it printed since.
func startNodeReceiver(t *testing.T, script string) (string, func() []string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		requireInstalled(t, "node (for the Node receiver of docs/integrating.md)", "apt-get install -y nodejs, then run npm ci in test/js", err)
	}
	dir, err := filepath.Abs("../test/js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json")); err != nil {
		requireInstalled(t, "the standardwebhooks package (test/js/node_modules)", "run npm ci in test/js", err)
	}
	f, err := os.CreateTemp(dir, ".doc-receiver-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.WriteString(script); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(node, f.Name())
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+whsec, fmt.Sprintf("PORT=%d", port))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var mu sync.Mutex
	var lines []string
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "listening" {
				close(ready)
				continue
			}
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("the Node receiver did not start")
	}
	return fmt.Sprintf("http://127.0.0.1:%d/hooks/auth", port), func() []string {
		time.Sleep(100 * time.Millisecond) // its last lines
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
}
