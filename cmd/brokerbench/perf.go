package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The broker serves no pprof endpoint, so -perf profiles the real
// processes of the refresh phase from outside with Linux perf: the broker
// and the Postgres cluster, each into DIR/<name>.perf.data, summarised into
// DIR/<name>.top.txt (flat, by symbol) and DIR/<name>.cum.txt (with
// children). In-process Go profiles come from BenchmarkRefreshEndToEnd.

type perfRun struct {
	name, dir string
	cmd       *exec.Cmd
	log       *os.File
}

func startPerf(dir, name string, pids []int) (*perfRun, error) {
	if len(pids) == 0 {
		return nil, fmt.Errorf("perf %s: no processes", name)
	}
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, fmt.Errorf("-perf needs Linux perf on PATH (apt-get install linux-perf): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ids := make([]string, len(pids))
	for i, p := range pids {
		ids[i] = strconv.Itoa(p)
	}
	log, err := os.Create(filepath.Join(dir, name+".perf.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-o", filepath.Join(dir, name+".perf.data"), "-p", strings.Join(ids, ","))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("perf record: %w", err)
	}
	time.Sleep(300 * time.Millisecond) // attach
	return &perfRun{name: name, dir: dir, cmd: cmd, log: log}, nil
}

// stop ends the recording and writes the text summaries.
func (p *perfRun) stop() error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	err := p.cmd.Wait()
	p.log.Close()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
			err = nil // perf re-raises the SIGINT it stopped on, after writing its data
		}
	}
	if err != nil {
		return fmt.Errorf("perf record %s: %w (see %s)", p.name, err, p.log.Name())
	}
	data := filepath.Join(p.dir, p.name+".perf.data")
	for _, r := range []struct {
		suffix string
		args   []string
	}{
		{"top", []string{"--no-children", "--sort", "sym", "--percent-limit", "0.5", "-g", "none"}},
		{"cum", []string{"--children", "--sort", "sym", "--percent-limit", "2", "-g", "none"}},
	} {
		args := append([]string{"report", "-i", data, "--stdio"}, r.args...)
		out, err := exec.Command("perf", args...).Output()
		if err != nil {
			return fmt.Errorf("perf report %s: %w", p.name, err)
		}
		if err := os.WriteFile(filepath.Join(p.dir, p.name+"."+r.suffix+".txt"), out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// clusterPIDs lists the postmaster and its live children.
func clusterPIDs(postmaster int) []int {
	pids := []int{postmaster}
	for _, s := range allStats() {
		if s.ppid == postmaster {
			pids = append(pids, s.pid)
		}
	}
	return pids
}

// profile starts perf on the broker and the Postgres cluster for one
// phase when -perf is set; the returned func stops it and writes the
// summaries (<phase>-broker.*, <phase>-postgres.*).
func (e *env) profile(o options, phase string) (stop func() error, err error) {
	if o.perfDir == "" {
		return func() error { return nil }, nil
	}
	var runs []*perfRun
	stop = func() error {
		var errs []error
		for _, r := range runs {
			errs = append(errs, r.stop())
		}
		return errors.Join(errs...)
	}
	targets := []struct {
		name string
		pids []int
	}{{phase + "-broker", []int{e.brokerPID}}}
	if e.postmaster > 0 {
		targets = append(targets, struct {
			name string
			pids []int
		}{phase + "-postgres", clusterPIDs(e.postmaster)})
	}
	for _, t := range targets {
		r, err := startPerf(o.perfDir, t.name, t.pids)
		if err != nil {
			_ = stop()
			return nil, err
		}
		runs = append(runs, r)
	}
	return stop, nil
}
