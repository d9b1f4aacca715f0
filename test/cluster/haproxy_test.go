package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/internal/pgtest"
)

// haproxyConfig balances round-robin over the brokers, checks /readyz every
// 200 ms (one failure takes a broker out, two successes put it back), names
// the broker that answered in X-Broker, and retries a request on another
// broker when its connection failed before any answer.
func haproxyConfig(port int, brokers []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend fe
    bind 127.0.0.1:%d
    default_backend brokers

backend brokers
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fall 1 rise 2
    http-response set-header X-Broker %%s
`, port)
	for i, addr := range brokers {
		fmt.Fprintf(&b, "    server b%d %s check\n", i+1, addr)
	}
	return b.String()
}

// TestHAProxyThreeBrokers runs three broker processes behind HAProxy on one
// Postgres: every hop of a login on another broker, refresh chains
// alternating brokers, reuse detection and logout across brokers, a key
// rotation all brokers publish, the balancer's cost against one broker
// direct, and a rolling restart of all brokers under steady load with no
// failed request.
func TestHAProxyThreeBrokers(t *testing.T) {
	needPostgres(t)
	haproxy := need(t, "haproxy", "haproxy")
	dir := scratch(t)
	pg := pgtest.NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := pg.CreateDatabase(ctx, "broker"); err != nil {
		t.Fatal(err)
	}
	dbURL := pg.URL("broker")
	runBroker(t, "version")

	hport := freePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d", hport)
	emu := startProvider(t, issuer, "emu", "777")
	k := newKeys()
	const drain = 1500 * time.Millisecond
	var brokers []*brokerProc
	var addrs, bases []string
	for i := range 3 {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		name := fmt.Sprintf("b%d", i+1)
		cfg := brokerConf{issuer: issuer, listen: addr, dbURL: dbURL, keys: k, providers: emu.yaml(), autoMigrate: true, drain: drain}.write(t, dir, name)
		brokers = append(brokers, startBroker(t, dir, name, cfg, addr))
		addrs = append(addrs, addr)
		bases = append(bases, "http://"+addr)
	}
	for _, b := range brokers {
		b.waitReady(t, time.Minute)
	}
	hcfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(hcfg, []byte(haproxyConfig(hport, addrs)), 0o644); err != nil {
		t.Fatal(err)
	}
	hp := startProc(t, "haproxy", filepath.Join(dir, "haproxy.log"), nil, haproxy, "-db", "-f", hcfg)
	waitBalanced(t, hp, issuer, 3)

	t.Run("login hops on different brokers", func(t *testing.T) {
		_, hops := login(t, issuer, emu)
		for i := 1; i < len(hops); i++ {
			if hops[i].Broker == "" || hops[i].Broker == hops[i-1].Broker {
				t.Fatalf("hops %v: want each on another broker", hops)
			}
		}
		t.Logf("login hops: %v", hops)
	})

	var chain []string
	t.Run("refresh chain alternates brokers", func(t *testing.T) {
		tok, _ := login(t, issuer, emu)
		chain = append(chain, tok)
		seen := map[string]bool{}
		prev := ""
		for i := range 6 {
			st, next, b, err := refresh(ctx, issuer, tok)
			if st != 200 || err != nil {
				t.Fatalf("refresh %d: %d %v", i, st, err)
			}
			if b == prev {
				t.Fatalf("refresh %d on %s again", i, b)
			}
			seen[b], prev, tok = true, b, next
			chain = append(chain, tok)
		}
		if len(seen) != 3 {
			t.Fatalf("refreshes reached %v, want all three brokers", seen)
		}
	})

	t.Run("reuse detection across brokers", func(t *testing.T) {
		if len(chain) < 4 {
			t.Skip("no chain")
		}
		// The chain's first token, three rotations old: a reuse wherever it
		// is presented, and it ends the session on every broker.
		st, _, b1, _ := refresh(ctx, issuer, chain[0])
		if st != 401 {
			t.Fatalf("reused token: %d, want 401", st)
		}
		live := chain[len(chain)-1]
		for range 3 {
			st, _, b2, _ := refresh(ctx, issuer, live)
			if st != 401 {
				t.Fatalf("live token after a reuse detected on %s: %d on %s, want 401", b1, st, b2)
			}
		}
	})

	t.Run("logout across brokers", func(t *testing.T) {
		tok, _ := login(t, issuer, emu)
		resp, body, err := send(ctx, "POST", issuer+"/auth/logout", "refresh_token="+tok)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("logout: %v %v %s", resp, err, body)
		}
		on := resp.Header.Get("X-Broker")
		for range 3 {
			st, _, b, _ := refresh(ctx, issuer, tok)
			if st != 401 {
				t.Fatalf("after logout on %s: refresh on %s answered %d, want 401", on, b, st)
			}
		}
	})

	t.Run("key rotation published by every broker", func(t *testing.T) {
		out := runBroker(t, "keys", "rotate", "--config", brokers[0].config)
		kid := strings.Fields(out)[0]
		d := waitPublished(t, kid, bases, 30*time.Second)
		t.Logf("new key %s published by all three brokers after %v (contract: within 30 s)", kid, d.Round(100*time.Millisecond))
	})

	t.Run("balancer overhead", func(t *testing.T) {
		sessions := createSessions(t, dbURL, 16)
		one := runLoad(bases[0], sessions[:8], 3*time.Second, nil)
		three := runLoad(issuer, sessions[8:], 3*time.Second, nil)
		t.Logf("refresh, one broker direct: %v", one)
		t.Logf("refresh, HAProxy + 3 brokers: %v", three)
		t.Logf("HAProxy×3 / one broker direct refresh throughput ratio: %.2f (2 shared cores: scaling cannot show here)", three.rate()/one.rate())
		if len(one.bad)+len(three.bad) > 0 {
			t.Fatal("failed refreshes")
		}
	})

	t.Run("rolling restart under load", func(t *testing.T) {
		sessions := createSessions(t, dbURL, 8)
		stop := make(chan struct{})
		resc := make(chan *loadResult, 1)
		go func() { resc <- runLoad(issuer, sessions, 2*time.Minute, stop) }()
		time.Sleep(time.Second)
		for i, b := range brokers {
			t0 := time.Now()
			if err := b.stop(drain + 15*time.Second); err != nil {
				t.Errorf("%s after SIGTERM: %v, want exit 0\n%s", b.name, err, b.tail())
			}
			took := time.Since(t0)
			if took < drain {
				t.Errorf("%s exited %v after SIGTERM, before its drain of %v", b.name, took, drain)
			}
			nb := startBroker(t, dir, b.name, b.config, b.addr)
			nb.waitReady(t, time.Minute)
			brokers[i] = nb
			time.Sleep(time.Second) // HAProxy's two successful checks
			t.Logf("%s: exited 0 %v after SIGTERM, back and ready", b.name, took.Round(10*time.Millisecond))
		}
		time.Sleep(time.Second)
		close(stop)
		res := <-resc
		t.Logf("refresh load across the rolling restart: %v", res)
		if len(res.bad) > 0 || res.ok == 0 {
			t.Fatalf("failed requests during the rolling restart: %v", res)
		}
	})
}

// waitBalanced waits until HAProxy has sent requests to n distinct brokers.
func waitBalanced(t *testing.T, hp *proc, base string, n int) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < n {
		if resp, _, err := send(context.Background(), "GET", base+"/healthz", ""); err == nil && resp.StatusCode == 200 {
			seen[resp.Header.Get("X-Broker")] = true
		}
		if hp.exited() || time.Now().After(deadline) {
			t.Fatalf("HAProxy balanced over %v only: %v\n%s", seen, hp.Err, hp.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
