// Command brokerbench is the broker's load harness. It starts a durable
// private Postgres (or uses DATABASE_URL), builds the broker and runs it as
// a separate process with a bench config, creates users and sessions
// through the broker's own storage code, and then measures, in one run:
//
//   - the raw ceiling: RSA-2048 PKCS#1 v1.5 SHA-256 signatures/s with
//     GOMAXPROCS goroutines (every access token costs one);
//   - refresh: POST /auth/token (cookie variant) from C closed-loop clients
//     for D, each client owning its sessions and always sending the newest
//     token; throughput, latency, errors, broker and Postgres CPU per
//     request (from /proc), broker RSS;
//   - JWKS requests/s, with and without If-None-Match;
//   - the whole login round trip against emulated OAuth2 providers running
//     in this process: logins/s, latency and the broker's share of it.
//
// Results are printed as a report (or JSON with -json; -o FILE writes the
// JSON as well), with the ratios to the signature ceiling measured in the
// same run and the targets of docs/performance.md; the exit status is 3
// when a target is missed. Run it from the repository:
//
//	go run ./cmd/brokerbench [-clients 32] [-duration 20s] [-sessions 64] [-json]
//
// The broker serves no pprof endpoint. -perf DIR profiles the broker and
// Postgres processes of every measured phase from outside with Linux perf;
// Go profiles of the refresh path come from BenchmarkRefreshEndToEnd in
// package broker (go test -bench RefreshEndToEnd -cpuprofile). -broker-bin
// runs a prebuilt broker instead of building ./cmd/broker, to compare two
// builds on the same machine.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/socialbroker/broker/broker"
	"github.com/socialbroker/broker/internal/childproc"
	"github.com/socialbroker/broker/internal/pglocal"
	"github.com/socialbroker/broker/storage"
)

type options struct {
	clients, sessions      int
	duration, warmup       time.Duration
	signDuration           time.Duration
	jwksClients            int
	jwksDuration           time.Duration
	loginClients           int
	loginDuration          time.Duration
	maxConns               int
	perfDir                string
	brokerBin              string
	jsonFile               string
	jsonOut, keep, verbose bool
}

func main() {
	var o options
	flag.IntVar(&o.clients, "clients", 32, "concurrent closed-loop refresh clients")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of the measured refresh phase")
	flag.IntVar(&o.sessions, "sessions", 64, "users and sessions to create (at least -clients)")
	flag.BoolVar(&o.jsonOut, "json", false, "print the results as one JSON object")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured refresh load before the measured phase")
	flag.DurationVar(&o.signDuration, "sign-duration", 3*time.Second, "length of the signature ceiling measurement")
	flag.IntVar(&o.jwksClients, "jwks-clients", 32, "concurrent JWKS clients")
	flag.DurationVar(&o.jwksDuration, "jwks-duration", 5*time.Second, "length of each JWKS phase")
	flag.IntVar(&o.loginClients, "login-clients", 4, "concurrent login clients (each with its own emulated provider and user)")
	flag.DurationVar(&o.loginDuration, "login-duration", 5*time.Second, "length of the login phase")
	flag.IntVar(&o.maxConns, "max-conns", 0, "database.max_conns of the bench broker (0: the broker's default)")
	flag.StringVar(&o.perfDir, "perf", "", "profile the broker and Postgres processes with Linux perf during each measured phase, into this directory")
	flag.StringVar(&o.brokerBin, "broker-bin", "", "run this broker binary instead of building ./cmd/broker (to compare builds)")
	flag.StringVar(&o.jsonFile, "o", "", "also write the JSON report to this file")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (Postgres data, broker log, config)")
	flag.BoolVar(&o.verbose, "v", false, "log progress details")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "brokerbench: unexpected argument", flag.Arg(0))
		os.Exit(2)
	}
	if o.clients < 1 || o.loginClients < 1 || o.jwksClients < 1 {
		fmt.Fprintln(os.Stderr, "brokerbench: client counts must be at least 1")
		os.Exit(2)
	}
	o.sessions = max(o.sessions, o.clients)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	rep, err := run(ctx, o, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "brokerbench:", err)
		os.Exit(1)
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	js = append(js, '\n')
	if o.jsonFile != "" {
		if err := os.WriteFile(o.jsonFile, js, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "brokerbench:", err)
			os.Exit(1)
		}
	}
	if o.jsonOut {
		os.Stdout.Write(js)
	} else {
		printReport(os.Stdout, rep)
	}
	if !rep.Pass {
		os.Exit(3)
	}
}

// progress lines go to stderr, so that -json output stays clean.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "brokerbench: "+format+"\n", args...)
}

// env is the running setup: Postgres, the broker process, the providers.
type env struct {
	tmp        string
	dbURL      string
	postmaster int // 0 when unknown (remote DATABASE_URL)
	brokerPID  int
	issuer     string
	client     *http.Client
	transport  *http.Transport
	providers  []*loginProvider
	stats      *storage.Store // one connection for pg_stat_* queries
}

// cpuSnap is the CPU time of every party at one instant.
type cpuSnap struct {
	at                             time.Time
	broker, postgres, self, system time.Duration
	steal                          time.Duration
	pgOK                           bool
}

func (e *env) snap() cpuSnap {
	s := cpuSnap{at: time.Now(), self: selfCPU()}
	s.system, s.steal = machineCPU()
	s.broker, _ = cpuOf(e.brokerPID)
	if e.postmaster > 0 {
		var err error
		s.postgres, err = postgresCPU(e.postmaster)
		s.pgOK = err == nil
	}
	return s
}

// cpuUse is the CPU time each party used during a phase, in seconds.
type cpuUse struct {
	WallS     float64 `json:"wall_s"`
	BrokerS   float64 `json:"broker_s"`
	PostgresS float64 `json:"postgres_s"` // -1: unknown
	BenchS    float64 `json:"bench_s"`    // this process: load generator (and emulators)
	MachineS  float64 `json:"machine_s"`  // the whole box, /proc/stat
	OtherS    float64 `json:"other_s"`    // machine − (broker + postgres + bench): other load on the box
	StealS    float64 `json:"steal_s"`    // /proc/stat steal: the hypervisor ran someone else
}

func used(a, b cpuSnap) cpuUse {
	u := cpuUse{
		WallS: b.at.Sub(a.at).Seconds(), BrokerS: (b.broker - a.broker).Seconds(),
		BenchS: (b.self - a.self).Seconds(), MachineS: (b.system - a.system).Seconds(), PostgresS: -1,
		StealS: (b.steal - a.steal).Seconds(),
	}
	ours := u.BrokerS + u.BenchS
	if a.pgOK && b.pgOK {
		u.PostgresS = (b.postgres - a.postgres).Seconds()
		ours += u.PostgresS
	}
	u.OtherS = max(0, u.MachineS-ours)
	return u
}

type report struct {
	Machine      machineInfo `json:"machine"`
	Command      string      `json:"command"`
	Started      time.Time   `json:"started"`
	GoVersion    string      `json:"go_version"`
	GOMAXPROCS   int         `json:"gomaxprocs"`
	LoadAvgStart float64     `json:"loadavg_1m_start"`
	LoadAvgEnd   float64     `json:"loadavg_1m_end"`
	Postgres     pgInfo      `json:"postgres"`
	Signature    signResult  `json:"signature_ceiling"`
	Refresh      refreshRes  `json:"refresh"`
	JWKS         jwksRes     `json:"jwks"`
	Login        loginRes    `json:"login"`
	Memory       memRes      `json:"broker_memory"`
	Idle         cpuUse      `json:"idle_cpu"` // 2 s with no load, before the signature ceiling
	Ratios       ratios      `json:"ratios"`
	Targets      []target    `json:"targets"`
	Pass         bool        `json:"pass"`
}

type pgInfo struct {
	Version           string `json:"version"`
	Managed           bool   `json:"managed"` // started by brokerbench (pglocal)
	DataDir           string `json:"data_dir,omitempty"`
	Fsync             string `json:"fsync"`
	SynchronousCommit string `json:"synchronous_commit"`
	FullPageWrites    string `json:"full_page_writes"`
	BrokerMaxConns    string `json:"broker_max_conns"`
}

type refreshRes struct {
	Clients             int         `json:"clients"`
	Sessions            int         `json:"sessions"`
	Requests            int         `json:"requests"`
	Seconds             float64     `json:"seconds"`
	PerSecond           float64     `json:"per_second"`
	Latency             latency     `json:"latency"`
	Errors              errorCounts `json:"errors"`
	CPU                 cpuUse      `json:"cpu"`
	BrokerCPUPerReqMS   float64     `json:"broker_cpu_per_request_ms"`
	PostgresCPUPerReqMS float64     `json:"postgres_cpu_per_request_ms"` // -1: unknown
	BenchCPUPerReqMS    float64     `json:"bench_cpu_per_request_ms"`
	TokenVerified       bool        `json:"access_token_verified"`
	Postgres            *pgPerReq   `json:"postgres_per_request,omitempty"`
}

type jwksPhase struct {
	Clients   int         `json:"clients"`
	Requests  int         `json:"requests"`
	Seconds   float64     `json:"seconds"`
	PerSecond float64     `json:"per_second"`
	Latency   latency     `json:"latency"`
	Errors    errorCounts `json:"errors"`
	CPU       cpuUse      `json:"cpu"`
	BrokerUS  float64     `json:"broker_cpu_per_request_us"`
}

type jwksRes struct {
	Bytes       int       `json:"body_bytes"`
	Plain       jwksPhase `json:"plain"`
	Conditional jwksPhase `json:"if_none_match"`
}

type loginRes struct {
	Clients             int         `json:"clients"`
	Provider            string      `json:"provider"`
	Logins              int         `json:"logins"`
	Seconds             float64     `json:"seconds"`
	PerSecond           float64     `json:"per_second"`
	Latency             latency     `json:"latency"`              // whole round trip
	BrokerTime          latency     `json:"broker_time"`          // login + callback − provider calls + token
	ProviderTime        latency     `json:"provider_time"`        // the broker's calls inside the emulator
	ConsentTime         latency     `json:"consent_time"`         // the browser at the emulator
	StartTime           latency     `json:"broker_start_time"`    // GET /auth/login/{provider}
	CallbackTime        latency     `json:"broker_callback_time"` // GET /auth/callback/{provider} − provider time
	TokenTime           latency     `json:"broker_token_time"`    // the first POST /auth/token
	SignInTime          latency     `json:"broker_signin_time"`   // login start + callback (broker time without the token request)
	Errors              errorCounts `json:"errors"`
	CPU                 cpuUse      `json:"cpu"`
	BrokerCPUPerLoginMS float64     `json:"broker_cpu_per_login_ms"`
	PostgresCPUPerLogin float64     `json:"postgres_cpu_per_login_ms"`
	Postgres            *pgPerReq   `json:"postgres_per_login,omitempty"`
}

type memRes struct {
	IdleRSSMB       float64 `json:"idle_rss_mb"`
	PeakAfterRefMB  float64 `json:"peak_rss_after_refresh_mb"`
	PeakAtEndMB     float64 `json:"peak_rss_at_end_mb"`
	RSSAfterLoadMB  float64 `json:"rss_after_load_mb"`
	PeakBeforeLoad  float64 `json:"peak_rss_before_load_mb"`
	IdleMeasuredAft string  `json:"idle_measured"`
}

type ratios struct {
	RefreshOverCeiling          float64 `json:"refresh_per_s_over_signature_ceiling"`
	BrokerCPUPerRefreshOverSig  float64 `json:"broker_cpu_per_refresh_over_cpu_per_signature"`
	PostgresCPUPerRefreshOverSi float64 `json:"postgres_cpu_per_refresh_over_cpu_per_signature"`
	JWKSOverCeiling             float64 `json:"jwks_per_s_over_signature_ceiling"`
	LoginBrokerP50OverSig       float64 `json:"login_broker_p50_over_cpu_per_signature"`
	LoginBrokerCPUOverSig       float64 `json:"login_broker_cpu_over_cpu_per_signature"`
	// What the broker alone could serve with every CPU of the machine
	// (CPUs ÷ broker CPU per request): the load generator and Postgres
	// share the box here.
	BrokerBoundRefreshPerS float64 `json:"broker_bound_refresh_per_s"`
	BrokerBoundJWKSPerS    float64 `json:"broker_bound_jwks_per_s"`
}

type target struct {
	Name   string  `json:"name"`
	Want   string  `json:"want"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Pass   bool    `json:"pass"`
	Detail string  `json:"detail,omitempty"`
}

func run(ctx context.Context, o options, args []string) (*report, error) {
	rep := &report{
		Machine: readMachine(), Command: "go run ./cmd/brokerbench " + strings.Join(args, " "),
		Started: time.Now().UTC(), GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAvgStart: loadAvg(),
	}
	e, cleanup, err := setup(ctx, o, rep)
	defer cleanup()
	if err != nil {
		return nil, err
	}

	// Users and sessions, through the broker's own storage code.
	tokens, err := createSessions(ctx, e.dbURL, o.sessions, e.providers[0].name)
	if err != nil {
		return nil, err
	}
	logf("created %d users with one session each", len(tokens))

	// Idle memory: after start, migrations, key load and a moment of calm.
	time.Sleep(time.Second)
	ia := e.snap()
	time.Sleep(2 * time.Second)
	rep.Idle = used(ia, e.snap())
	rss, hwm, err := memKB(e.brokerPID)
	if err != nil {
		return nil, err
	}
	rep.Memory.IdleRSSMB, rep.Memory.PeakBeforeLoad = float64(rss)/1024, float64(hwm)/1024
	rep.Memory.IdleMeasuredAft = "after /readyz, session setup and 3 s idle, before any load"

	// 1. The signature ceiling (broker and Postgres idle).
	logf("signature ceiling: %d goroutines for %v", runtime.GOMAXPROCS(0), o.signDuration)
	if rep.Signature, err = signCeiling(ctx, o.signDuration); err != nil {
		return nil, err
	}

	// 2. Refresh.
	ref := newRefresher(strings.TrimPrefix(e.issuer, "http://"), tokens, o.clients)
	if o.warmup > 0 {
		logf("refresh warm-up: %d clients for %v", o.clients, o.warmup)
		w := closedLoop(ctx, o.clients, o.warmup, ref.op)
		if w.errs.total() > 0 {
			return nil, fmt.Errorf("refresh warm-up failed: %v", w.errs)
		}
	}
	logf("refresh: %d clients, %d sessions, %v", o.clients, len(tokens), o.duration)
	stopPerf, err := e.profile(o, "refresh")
	if err != nil {
		return nil, err
	}
	pa := e.pgCounters(ctx)
	a := e.snap()
	lr := closedLoop(ctx, o.clients, o.duration, ref.op)
	b := e.snap()
	pb := e.pgCounters(ctx)
	if err := stopPerf(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rr := &rep.Refresh
	rr.Clients, rr.Sessions, rr.Requests, rr.Seconds = o.clients, len(tokens), len(lr.lats), lr.elapsed.Seconds()
	rr.PerSecond = float64(rr.Requests) / rr.Seconds
	rr.Latency, rr.Errors, rr.CPU = summarize(lr.lats), lr.errs, used(a, b)
	if n := float64(rr.Requests + lr.errs.total()); n > 0 {
		rr.BrokerCPUPerReqMS = rr.CPU.BrokerS * 1000 / n
		rr.BenchCPUPerReqMS = rr.CPU.BenchS * 1000 / n
		rr.PostgresCPUPerReqMS = -1
		if rr.CPU.PostgresS >= 0 {
			rr.PostgresCPUPerReqMS = rr.CPU.PostgresS * 1000 / n
		}
	}
	rr.Postgres = pgPerRequest(pa, pb, rr.Requests+lr.errs.total())
	if ref.sample != nil {
		if err := verifySample(ctx, e, ref.sample); err != nil {
			return nil, fmt.Errorf("an access token from the refresh phase does not verify: %w", err)
		}
		rr.TokenVerified = true
	}
	if rss, hwm, err := memKB(e.brokerPID); err == nil {
		rep.Memory.PeakAfterRefMB, rep.Memory.RSSAfterLoadMB = float64(hwm)/1024, float64(rss)/1024
	}

	// 3. JWKS, plain and conditional.
	body, etag, err := fetchJWKS(ctx, e)
	if err != nil {
		return nil, err
	}
	rep.JWKS.Bytes = len(body)
	for _, cond := range []bool{false, true} {
		tag, ph := "", &rep.JWKS.Plain
		if cond {
			tag, ph = etag, &rep.JWKS.Conditional
		}
		logf("jwks (If-None-Match: %v): %d clients for %v", cond, o.jwksClients, o.jwksDuration)
		name := "jwks"
		if cond {
			name = "jwks304"
		}
		stopPerf, err := e.profile(o, name)
		if err != nil {
			return nil, err
		}
		a := e.snap()
		r := closedLoop(ctx, o.jwksClients, o.jwksDuration, jwksOp(strings.TrimPrefix(e.issuer, "http://"), tag, o.jwksClients))
		b := e.snap()
		if err := stopPerf(); err != nil {
			return nil, err
		}
		*ph = jwksPhase{Clients: o.jwksClients, Requests: len(r.lats), Seconds: r.elapsed.Seconds(),
			Latency: summarize(r.lats), Errors: r.errs, CPU: used(a, b)}
		ph.PerSecond = float64(ph.Requests) / ph.Seconds
		if ph.Requests > 0 {
			ph.BrokerUS = ph.CPU.BrokerS * 1e6 / float64(ph.Requests)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// 4. Logins.
	if err := runLogins(ctx, o, e, rep); err != nil {
		return nil, err
	}

	if _, hwm, err := memKB(e.brokerPID); err == nil {
		rep.Memory.PeakAtEndMB = float64(hwm) / 1024
	}
	rep.LoadAvgEnd = loadAvg()
	evaluate(rep)
	return rep, nil
}

func runLogins(ctx context.Context, o options, e *env, rep *report) error {
	lc := &http.Client{
		Transport: e.transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// The first login of each provider's user signs them up (signup.mode:
	// auto); the measured logins are returning users.
	for _, p := range e.providers {
		if _, kind := login(ctx, lc, e.issuer, p); kind != "" {
			return fmt.Errorf("first login with %s failed: %s (see the broker log with -keep)", p.name, kind)
		}
	}
	logf("login: %d clients for %v", o.loginClients, o.loginDuration)
	var (
		mu     sync.Mutex
		timing []loginTiming
	)
	stopPerf, err := e.profile(o, "login")
	if err != nil {
		return err
	}
	pa := e.pgCounters(ctx)
	a := e.snap()
	r := closedLoop(ctx, o.loginClients, o.loginDuration, func(ctx context.Context, c int) (string, bool) {
		lt, kind := login(ctx, lc, e.issuer, e.providers[c%len(e.providers)])
		if kind == "" {
			mu.Lock()
			timing = append(timing, lt)
			mu.Unlock()
		}
		return kind, false
	})
	b := e.snap()
	pb := e.pgCounters(ctx)
	if err := stopPerf(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var tot, brk, prov, cons, st, cb, tk, si []time.Duration
	for _, t := range timing {
		tot, brk, prov, cons = append(tot, t.total), append(brk, t.broker), append(prov, t.provider), append(cons, t.consent)
		st, cb, tk, si = append(st, t.start), append(cb, t.callback), append(tk, t.token), append(si, t.start+t.callback)
	}
	lr := &rep.Login
	lr.Clients, lr.Provider, lr.Logins, lr.Seconds = o.loginClients, "oauth2 (providers/emulator, in the bench process)", len(timing), r.elapsed.Seconds()
	lr.PerSecond = float64(lr.Logins) / lr.Seconds
	lr.Latency, lr.BrokerTime, lr.ProviderTime, lr.ConsentTime = summarize(tot), summarize(brk), summarize(prov), summarize(cons)
	lr.StartTime, lr.CallbackTime, lr.TokenTime, lr.SignInTime = summarize(st), summarize(cb), summarize(tk), summarize(si)
	lr.Errors, lr.CPU = r.errs, used(a, b)
	lr.Postgres = pgPerRequest(pa, pb, lr.Logins+r.errs.total())
	if lr.Logins > 0 {
		lr.BrokerCPUPerLoginMS = lr.CPU.BrokerS * 1000 / float64(lr.Logins)
		lr.PostgresCPUPerLogin = -1
		if lr.CPU.PostgresS >= 0 {
			lr.PostgresCPUPerLogin = lr.CPU.PostgresS * 1000 / float64(lr.Logins)
		}
	}
	return nil
}

// setup starts Postgres, the providers and the broker. cleanup undoes
// whatever was done, also after an error.
func setup(ctx context.Context, o options, rep *report) (e *env, cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	e = &env{}
	if e.tmp, err = os.MkdirTemp("", "brokerbench-"); err != nil {
		return nil, cleanup, err
	}
	// As root the server runs as the user postgres, which must reach it.
	if err = os.Chmod(e.tmp, 0o755); err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, func() {
		if o.keep {
			logf("kept %s", e.tmp)
			return
		}
		os.RemoveAll(e.tmp)
	})

	// Postgres: durable (fsync, synchronous_commit and full_page_writes as
	// initdb leaves them), never pglocal's Fast mode.
	if u := os.Getenv("DATABASE_URL"); u != "" {
		e.dbURL = u
		logf("using DATABASE_URL")
	} else {
		logf("starting PostgreSQL under %s", e.tmp)
		cl, err := pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(e.tmp, "pg"), Logf: vlogf(o)})
		if err != nil {
			return nil, cleanup, err
		}
		undo = append(undo, func() {
			if err := cl.Stop(); err != nil {
				logf("stopping postgres: %v", err)
			}
		})
		if err := cl.CreateDatabase(ctx, "broker"); err != nil {
			return nil, cleanup, err
		}
		e.dbURL = cl.URL("broker")
		rep.Postgres.Managed = true
		rep.Postgres.DataDir = filepath.Join(e.tmp, "pg", "data")
		if e.postmaster, err = postmasterPID(rep.Postgres.DataDir); err != nil {
			return nil, cleanup, err
		}
	}

	// The broker binary.
	bin := filepath.Join(e.tmp, "broker")
	if o.brokerBin != "" {
		if bin, err = filepath.Abs(o.brokerBin); err != nil {
			return nil, cleanup, err
		}
		logf("using the broker binary %s", bin)
	} else {
		logf("building the broker")
		if err := buildBroker(ctx, bin); err != nil {
			return nil, cleanup, err
		}
	}

	// HTTP: one transport for every client of the bench.
	e.transport = &http.Transport{
		Proxy: nil, MaxIdleConns: 0, MaxIdleConnsPerHost: 4 * max(o.clients, o.jwksClients, o.loginClients),
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	undo = append(undo, e.transport.CloseIdleConnections)
	e.client = &http.Client{
		Transport: e.transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	port, err := freePort()
	if err != nil {
		return nil, cleanup, err
	}
	e.issuer = fmt.Sprintf("http://127.0.0.1:%d", port)
	if e.providers, err = startLoginProviders(o.loginClients, e.issuer, e.transport); err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, func() { closeLoginProviders(e.providers) })

	cfgPath := filepath.Join(e.tmp, "broker.yaml")
	if err := os.WriteFile(cfgPath, []byte(benchConfig(e, port, o.maxConns)), 0o600); err != nil {
		return nil, cleanup, err
	}
	logPath := filepath.Join(e.tmp, "broker.log")
	proc, err := startBroker(bin, cfgPath, logPath)
	if err != nil {
		return nil, cleanup, err
	}
	e.brokerPID = proc.PID
	undo = append(undo, func() {
		if err := proc.Stop(20 * time.Second); err != nil {
			logf("stopping the broker: %v", err)
		}
	})
	if err := waitReady(ctx, e, proc, logPath); err != nil {
		return nil, cleanup, err
	}
	logf("broker (pid %d) ready at %s", e.brokerPID, e.issuer)

	if e.postmaster == 0 {
		e.postmaster = findPostmaster(ctx, e.dbURL)
		if e.postmaster == 0 {
			logf("DATABASE_URL: the server's processes are not visible here; Postgres CPU is not measured")
		}
	}
	if e.stats, err = storage.Open(ctx, e.dbURL, storage.Options{MaxConns: 1}); err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, e.stats.Close)
	rep.Postgres = pgSettings(ctx, e.dbURL, rep.Postgres)
	rep.Postgres.BrokerMaxConns = "broker default: max(16, 4 × GOMAXPROCS)"
	if o.maxConns > 0 {
		rep.Postgres.BrokerMaxConns = fmt.Sprint(o.maxConns)
	}
	return e, cleanup, nil
}

func vlogf(o options) func(string, ...any) {
	if !o.verbose {
		return nil
	}
	return func(format string, args ...any) { logf(format, args...) }
}

// buildBroker runs go build for ./cmd/broker in the module this command
// belongs to (the current module).
func buildBroker(ctx context.Context, out string) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return errors.New("run brokerbench from the broker repository (no go.mod here)")
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/broker")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/broker: %w\n%s", err, b)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// benchConfig is the broker's config for the bench: limits off, plain
// http cookies, signup.mode auto, the emulated providers.
func benchConfig(e *env, port, maxConns int) string {
	db := ""
	if maxConns > 0 {
		db = fmt.Sprintf("\n  max_conns: %d", maxConns)
	}
	return fmt.Sprintf(`# brokerbench config (generated)
issuer: %[1]s
listen: 127.0.0.1:%[2]d
database:
  url: %[3]q
  auto_migrate: true%[4]s
cookies:
  hash_key: %[5]s
  block_key: %[6]s
  secure: false
tokens:
  access_ttl: 10m
  refresh_ttl: 720h
  refresh_idle_ttl: 168h
  reuse_grace: 10s
  audience: [https://api.example.com]
keys:
  encryption_key: %[7]s
  rotate_every: 720h
  jwks_max_age: 10m
redirects:
  allowed: [%[1]s/demo/]
  default: %[1]s/demo/
cors:
  allowed_origins: []
limits:
  per_minute: { login: 0, callback: 0, token: 0 }
signup:
  mode: auto
providers:
%[8]s`, e.issuer, port, e.dbURL, db, randKey(64), randKey(32), randKey(32), providersYAML(e.providers))
}

// brokerProc is the broker child process.
type brokerProc = childproc.Process

// startBroker starts `broker serve`. The child gets SIGKILL should this
// process die (childproc.Start keeps the forking thread alive).
func startBroker(bin, cfg, logPath string) (*brokerProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child writes through its own descriptor
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p, err := childproc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	return p, nil
}

func waitReady(ctx context.Context, e *env, p *brokerProc, logPath string) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.issuer+"/readyz", nil)
		if resp, err := e.client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.Done:
			return fmt.Errorf("the broker exited during start:\n%s", tail(logPath, 2048))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the broker was not ready within 90 s:\n%s", tail(logPath, 2048))
		}
	}
}

func tail(path string, n int64) string {
	b, _ := os.ReadFile(path)
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return strings.TrimSpace(string(b))
}

// createSessions creates n users, each with one identity and one session,
// the way the broker does: storage.CreateUser, broker.NewRefreshToken and
// storage.CreateSession. It returns the sessions' refresh tokens.
func createSessions(ctx context.Context, dbURL string, n int, idp string) ([]string, error) {
	st, err := storage.Open(ctx, dbURL, storage.Options{MaxConns: 8})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	tokens := make([]string, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	run := fmt.Sprint(time.Now().UnixNano())
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			now := time.Now()
			u, err := st.CreateUser(ctx, storage.NewUser{
				Now: now, Profile: map[string]string{"nickname": fmt.Sprintf("bench %d", i)},
				Identity: storage.Identity{Provider: idp, Subject: fmt.Sprintf("bench-%s-%d", run, i)},
			})
			if err != nil {
				errs <- err
				return
			}
			tok, hash := broker.NewRefreshToken()
			if _, err := st.CreateSession(ctx, storage.NewSession{
				UserID: u.ID, IDP: idp, TokenHash: hash, Now: now, ExpiresAt: now.Add(720 * time.Hour),
			}); err != nil {
				errs <- err
				return
			}
			tokens[i] = tok
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("create sessions: %w", err)
	}
	return tokens, nil
}

func fetchJWKS(ctx context.Context, e *env) (body []byte, etag string, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.issuer+"/.well-known/jwks.json", nil)
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
		return nil, "", fmt.Errorf("jwks: status %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	return body, resp.Header.Get("ETag"), nil
}

// verifySample checks one access token of the run against the JWKS: the
// bench measured real tokens.
func verifySample(ctx context.Context, e *env, body []byte) error {
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return fmt.Errorf("no access token in %q", body)
	}
	jwks, _, err := fetchJWKS(ctx, e)
	if err != nil {
		return err
	}
	set, err := jwk.Parse(jwks)
	if err != nil {
		return err
	}
	payload, err := jws.Verify([]byte(tr.AccessToken), jws.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)))
	if err != nil {
		return err
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Iss != e.issuer || c.Sub == "" {
		return fmt.Errorf("claims %s", payload)
	}
	return nil
}

// pgSettings reads the server's version and durability settings.
func pgSettings(ctx context.Context, dbURL string, info pgInfo) pgInfo {
	st, err := storage.Open(ctx, dbURL, storage.Options{MaxConns: 1})
	if err != nil {
		return info
	}
	defer st.Close()
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{"server_version", &info.Version}, {"fsync", &info.Fsync},
		{"synchronous_commit", &info.SynchronousCommit}, {"full_page_writes", &info.FullPageWrites},
	} {
		_ = st.Pool().QueryRow(ctx, "SELECT current_setting($1)", s.name).Scan(s.dst)
	}
	return info
}

// findPostmaster finds the postmaster of DATABASE_URL's server when it
// runs on this machine (its data directory's postmaster.pid).
func findPostmaster(ctx context.Context, dbURL string) int {
	st, err := storage.Open(ctx, dbURL, storage.Options{MaxConns: 1})
	if err != nil {
		return 0
	}
	defer st.Close()
	var dir string
	if err := st.Pool().QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
		return 0
	}
	pid, err := postmasterPID(dir)
	if err != nil {
		return 0
	}
	if s, err := readStat(pid); err != nil || !strings.Contains(s.comm, "postgres") {
		return 0
	}
	return pid
}
