package main

import (
	"fmt"
	"io"
	"strings"
)

// evaluate fills the ratios and checks the targets of docs/performance.md.
func evaluate(r *report) {
	sig := r.Signature
	q := &r.Ratios
	if sig.PerSecond > 0 {
		q.RefreshOverCeiling = r.Refresh.PerSecond / sig.PerSecond
		q.JWKSOverCeiling = r.JWKS.Plain.PerSecond / sig.PerSecond
	}
	if sig.CPUPerSigMS > 0 {
		q.BrokerCPUPerRefreshOverSig = r.Refresh.BrokerCPUPerReqMS / sig.CPUPerSigMS
		if r.Refresh.PostgresCPUPerReqMS >= 0 {
			q.PostgresCPUPerRefreshOverSi = r.Refresh.PostgresCPUPerReqMS / sig.CPUPerSigMS
		}
		q.LoginBrokerP50OverSig = r.Login.BrokerTime.P50 / sig.CPUPerSigMS
		q.LoginBrokerCPUOverSig = r.Login.BrokerCPUPerLoginMS / sig.CPUPerSigMS
	}

	if r.Refresh.BrokerCPUPerReqMS > 0 {
		q.BrokerBoundRefreshPerS = float64(r.Machine.CPUs) * 1000 / r.Refresh.BrokerCPUPerReqMS
	}
	if r.JWKS.Plain.BrokerUS > 0 {
		q.BrokerBoundJWKSPerS = float64(r.Machine.CPUs) * 1e6 / r.JWKS.Plain.BrokerUS
	}

	errs := errorCounts{}
	errs.add(r.Refresh.Errors)
	errs.add(r.JWKS.Plain.Errors)
	errs.add(r.JWKS.Conditional.Errors)
	errs.add(r.Login.Errors)

	add := func(name, want string, v float64, unit string, pass bool, detail string) {
		r.Targets = append(r.Targets, target{Name: name, Want: want, Value: v, Unit: unit, Pass: pass, Detail: detail})
	}
	add("refresh throughput", fmt.Sprintf("≥ 0.55 × signature ceiling (%d goroutines)", sig.Goroutines),
		q.RefreshOverCeiling, "× ceiling", q.RefreshOverCeiling >= 0.55,
		fmt.Sprintf("%.0f refresh/s vs %.0f signatures/s", r.Refresh.PerSecond, sig.PerSecond))
	add("refresh p99 latency", "≤ 60 ms", r.Refresh.Latency.P99, "ms", r.Refresh.Latency.P99 <= 60, "")
	add("errors", "0 (refresh, JWKS, login)", float64(errs.total()), "errors", errs.total() == 0, errs.String())
	add("broker CPU per refresh", "≤ 1.1 ms", r.Refresh.BrokerCPUPerReqMS, "ms", r.Refresh.BrokerCPUPerReqMS <= 1.1,
		fmt.Sprintf("%.2f × CPU per signature", q.BrokerCPUPerRefreshOverSig))
	if r.Refresh.PostgresCPUPerReqMS >= 0 {
		add("Postgres CPU per refresh", "≤ 0.4 ms", r.Refresh.PostgresCPUPerReqMS, "ms", r.Refresh.PostgresCPUPerReqMS <= 0.4,
			fmt.Sprintf("%.2f × CPU per signature", q.PostgresCPUPerRefreshOverSi))
	} else {
		add("Postgres CPU per refresh", "≤ 0.4 ms", -1, "ms", false, "not measured: the server's processes are not visible")
	}
	add("JWKS throughput", "≥ 40000 req/s", r.JWKS.Plain.PerSecond, "req/s", r.JWKS.Plain.PerSecond >= 40000,
		fmt.Sprintf("with If-None-Match: %.0f req/s", r.JWKS.Conditional.PerSecond))
	add("login broker time p50", "≤ 3 ms", r.Login.BrokerTime.P50, "ms", r.Login.BrokerTime.P50 <= 3 && r.Login.Logins > 0,
		fmt.Sprintf("broker CPU %.2f ms/login", r.Login.BrokerCPUPerLoginMS))
	add("broker RSS idle", "≤ 40 MB", r.Memory.IdleRSSMB, "MB", r.Memory.IdleRSSMB <= 40, "")
	add("broker RSS under load (peak)", "≤ 120 MB", r.Memory.PeakAtEndMB, "MB", r.Memory.PeakAtEndMB <= 120, "VmHWM at the end of the run")

	r.Pass = true
	for _, t := range r.Targets {
		r.Pass = r.Pass && t.Pass
	}
}

func lat(l latency) string {
	return fmt.Sprintf("p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms (mean %.2f, n %d)", l.P50, l.P90, l.P99, l.Max, l.Mean, l.N)
}

func cpuLine(c cpuUse) string {
	pg := "n/a"
	if c.PostgresS >= 0 {
		pg = fmt.Sprintf("%.2f", c.PostgresS)
	}
	return fmt.Sprintf("broker %.2f s, postgres %s s, bench %.2f s, other %.2f s of %.2f s machine busy (steal %.2f s) in %.1f s wall",
		c.BrokerS, pg, c.BenchS, c.OtherS, c.MachineS, c.StealS, c.WallS)
}

func printReport(w io.Writer, r *report) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	m := r.Machine
	p("brokerbench — %s", r.Started.Format("2006-01-02 15:04:05 UTC"))
	p("machine   %d CPUs, %s, %d MB RAM, Linux %s; %s, GOMAXPROCS %d; load average %.2f → %.2f",
		m.CPUs, m.CPUModel, m.MemoryMB, m.Kernel, r.GoVersion, r.GOMAXPROCS, r.LoadAvgStart, r.LoadAvgEnd)
	pg := r.Postgres
	p("postgres  %s, fsync=%s synchronous_commit=%s full_page_writes=%s, broker pool: %s", pg.Version, pg.Fsync, pg.SynchronousCommit, pg.FullPageWrites, pg.BrokerMaxConns)
	p("command   %s", r.Command)
	p("idle      CPU in 2 s without load: %s", cpuLine(r.Idle))
	p("")
	s := r.Signature
	p("signature ceiling (RSA-2048 PKCS#1 v1.5 SHA-256, %d goroutines, %.1f s)", s.Goroutines, s.Seconds)
	p("  %.0f signatures/s, %.3f ms CPU per signature (other load on the box: %.0f%%, steal %.2f s)", s.PerSecond, s.CPUPerSigMS, 100*s.OtherCPUShare, s.StealS)
	p("")
	f := r.Refresh
	p("refresh  POST /auth/token (cookie), %d clients, %d sessions, %.1f s", f.Clients, f.Sessions, f.Seconds)
	p("  %.0f refresh/s = %.2f × signature ceiling", f.PerSecond, r.Ratios.RefreshOverCeiling)
	p("  latency %s", lat(f.Latency))
	p("  errors  %s", f.Errors)
	pgms := "n/a"
	if f.PostgresCPUPerReqMS >= 0 {
		pgms = fmt.Sprintf("%.3f ms (%.2f × signature)", f.PostgresCPUPerReqMS, r.Ratios.PostgresCPUPerRefreshOverSi)
	}
	p("  CPU per refresh: broker %.3f ms (%.2f × signature), postgres %s, load generator %.3f ms",
		f.BrokerCPUPerReqMS, r.Ratios.BrokerCPUPerRefreshOverSig, pgms, f.BenchCPUPerReqMS)
	p("  CPU: %s", cpuLine(f.CPU))
	p("  broker-bound capacity (%d CPUs ÷ broker CPU per refresh): %.0f refresh/s", r.Machine.CPUs, r.Ratios.BrokerBoundRefreshPerS)
	if q := f.Postgres; q != nil {
		p("  Postgres per refresh: %.0f WAL bytes, %.1f WAL records, %.2f commits, %.2f WAL fsyncs, %.2f WAL writes, %.1f buffer hits, %.2f reads",
			q.WALBytes, q.WALRecords, q.Commits, q.WALSyncs, q.WALWrites, q.BlksHit, q.BlksRead)
	}
	p("  a sampled access token verified against the JWKS: %v", f.TokenVerified)
	p("")
	j := r.JWKS
	for _, ph := range []struct {
		name string
		x    jwksPhase
	}{{"plain (200, " + fmt.Sprint(j.Bytes) + " bytes)", j.Plain}, {"If-None-Match (304)", j.Conditional}} {
		p("jwks  %s, %d clients, %.1f s", ph.name, ph.x.Clients, ph.x.Seconds)
		p("  %.0f req/s, latency %s", ph.x.PerSecond, lat(ph.x.Latency))
		p("  errors %s; broker CPU %.1f µs/request; CPU: %s", ph.x.Errors, ph.x.BrokerUS, cpuLine(ph.x.CPU))
	}
	p("  broker-bound capacity (%d CPUs ÷ broker CPU per plain request): %.0f req/s", r.Machine.CPUs, r.Ratios.BrokerBoundJWKSPerS)
	p("")
	l := r.Login
	p("login  login → consent (emulator) → callback → token, %d clients, %s, %.1f s", l.Clients, l.Provider, l.Seconds)
	p("  %.1f logins/s; round trip %s", l.PerSecond, lat(l.Latency))
	p("  broker time  %s", lat(l.BrokerTime))
	p("    login start %s", lat(l.StartTime))
	p("    callback    %s", lat(l.CallbackTime))
	p("    token       %s", lat(l.TokenTime))
	p("    start+callback (without the token request) %s", lat(l.SignInTime))
	p("  provider time (broker's token+userinfo calls) %s", lat(l.ProviderTime))
	p("  consent (browser at the emulator) %s", lat(l.ConsentTime))
	pl := "n/a"
	if l.PostgresCPUPerLogin >= 0 {
		pl = fmt.Sprintf("%.3f ms", l.PostgresCPUPerLogin)
	}
	p("  CPU per login: broker %.3f ms (%.2f × signature), postgres %s; errors %s", l.BrokerCPUPerLoginMS, r.Ratios.LoginBrokerCPUOverSig, pl, l.Errors)
	p("  CPU: %s", cpuLine(l.CPU))
	if q := l.Postgres; q != nil {
		p("  Postgres per login: %.0f WAL bytes, %.1f WAL records, %.2f commits, %.2f WAL fsyncs",
			q.WALBytes, q.WALRecords, q.Commits, q.WALSyncs)
	}
	p("")
	mm := r.Memory
	p("broker memory  idle RSS %.1f MB (%s); peak RSS (VmHWM) %.1f MB before load, %.1f MB after refresh, %.1f MB at the end",
		mm.IdleRSSMB, mm.IdleMeasuredAft, mm.PeakBeforeLoad, mm.PeakAfterRefMB, mm.PeakAtEndMB)
	p("")
	p("targets")
	for _, t := range r.Targets {
		mark := "PASS"
		if !t.Pass {
			mark = "MISS"
		}
		d := ""
		if t.Detail != "" {
			d = " — " + t.Detail
		}
		p("  %-4s %-30s %10.3f %-10s want %s%s", mark, t.Name, t.Value, t.Unit, t.Want, d)
	}
	verdict := "all targets met"
	if !r.Pass {
		var miss []string
		for _, t := range r.Targets {
			if !t.Pass {
				miss = append(miss, t.Name)
			}
		}
		verdict = "missed: " + strings.Join(miss, ", ")
	}
	p("  %s", verdict)
}
