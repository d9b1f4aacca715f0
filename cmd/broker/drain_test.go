package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/socialbroker/broker/internal/config"
	"github.com/socialbroker/broker/storage/storagetest"
)

// TestServeDrainsOnSIGTERM: on SIGTERM (the context's end) /readyz answers
// 503 at once, everything else is served for shutdown.drain, then the
// listener closes, an in-flight request still gets its answer and serve
// returns nil (exit 0).
func TestServeDrainsOnSIGTERM(t *testing.T) {
	const drain = 1500 * time.Millisecond
	dbURL := storagetest.NewURL(t)
	path := writeConfig(t, dbURL, "127.0.0.1:0")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("shutdown:\n  drain: 1500ms\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg, err := config.Load(path, func(k string) string { return map[string]string{"DATABASE_URL": dbURL}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Shutdown.Drain != drain {
		t.Fatalf("shutdown.drain = %v", cfg.Shutdown.Drain)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, newLogger(io.Discard), func(a string) { addrc <- a }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	base := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	status := func(path string) int {
		r, err := client.Get(base + path)
		if err != nil {
			return -1
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r.StatusCode
	}
	if s := status("/readyz"); s != 200 {
		t.Fatalf("/readyz before SIGTERM: %d", s)
	}

	// An in-flight request: headers sent, body not yet.
	inflight, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer inflight.Close()
	body := "grant_type=refresh_token&refresh_token=x"
	if _, err := io.WriteString(inflight, "POST /auth/token HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body[:10]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server reads the headers: the connection is active

	sigterm := time.Now()
	cancel()
	// /readyz turns 503 at once; the rest is still served.
	var turned time.Duration
	for {
		if s := status("/readyz"); s == 503 {
			turned = time.Since(sigterm)
			break
		}
		if time.Since(sigterm) > time.Second {
			t.Fatal("/readyz did not answer 503 within 1 s of SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, p := range []string{"/healthz", "/.well-known/jwks.json"} {
		if s := status(p); s != 200 {
			t.Errorf("%s while draining: %d, want 200", p, s)
		}
	}
	// Still serving close to the end of the drain, and not exited.
	time.Sleep(time.Until(sigterm.Add(drain - 300*time.Millisecond)))
	if s := status("/healthz"); s != 200 {
		t.Errorf("/healthz %v after SIGTERM (drain %v): %d, want 200", time.Since(sigterm), drain, s)
	}
	select {
	case err := <-done:
		t.Fatalf("serve returned %v during the drain", err)
	default:
	}

	// After the drain the listener closes; the in-flight request is finished.
	deadline := time.Now().Add(5 * time.Second)
	for status("/healthz") != -1 {
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts 5 s after the drain")
		}
		time.Sleep(20 * time.Millisecond)
	}
	closed := time.Since(sigterm)
	if closed < drain {
		t.Errorf("the listener closed %v after SIGTERM, before the drain of %v", closed, drain)
	}
	select {
	case err := <-done:
		t.Fatalf("serve returned (%v) before its in-flight request was answered", err)
	default:
	}
	if _, err := io.WriteString(inflight, body[10:]); err != nil {
		t.Fatal(err)
	}
	_ = inflight.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(inflight), nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 && resp.StatusCode != 401 {
		t.Errorf("in-flight request: status %d, want the token endpoint's 400/401", resp.StatusCode)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after the drain: %v, want nil (exit 0)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after its last request")
	}
	t.Logf("readyz 503 after %v; listener closed after %v (drain %v); in-flight request answered %d", turned.Round(time.Millisecond), closed.Round(time.Millisecond), drain, resp.StatusCode)
	if !resp.Close {
		t.Errorf("in-flight answer during shutdown keeps its connection")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
