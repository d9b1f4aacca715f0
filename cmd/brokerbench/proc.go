package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports.
const clockTick = 100

// procStat is the part of /proc/<pid>/stat the bench reads.
type procStat struct {
	pid, ppid                    int
	comm                         string
	utime, stime, cutime, cstime int64 // clock ticks
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// "pid (comm) state ppid …": comm may hold spaces and parentheses.
	open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[closing+1:]))
	// f[0] is field 3 (state); utime is field 14, so f[11].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(f[i], 10, 64); return n }
	return procStat{
		pid: pid, ppid: int(num(1)), comm: string(b[open+1 : closing]),
		utime: num(11), stime: num(12), cutime: num(13), cstime: num(14),
	}, nil
}

func ticks(t int64) time.Duration { return time.Duration(t) * time.Second / clockTick }

// cpuOf returns the CPU time (user+system, all threads) of one process.
func cpuOf(pid int) (time.Duration, error) {
	s, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return ticks(s.utime + s.stime), nil
}

// selfCPU is this process's CPU time (all threads).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// allStats reads every process in /proc.
func allStats() []procStat {
	ents, _ := os.ReadDir("/proc")
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readStat(pid); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// postgresCPU is the CPU time of a whole cluster: the postmaster, every
// live child (backends, walwriter, checkpointer, …) and, through the
// postmaster's cutime/cstime, the children that already exited.
func postgresCPU(postmaster int) (time.Duration, error) {
	pm, err := readStat(postmaster)
	if err != nil {
		return 0, err
	}
	total := pm.utime + pm.stime + pm.cutime + pm.cstime
	for _, s := range allStats() {
		if s.ppid == postmaster {
			total += s.utime + s.stime
		}
	}
	return ticks(total), nil
}

// postmasterPID reads the first line of a data directory's postmaster.pid.
func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// memKB returns VmRSS and VmHWM (peak RSS) of a process, in KiB.
func memKB(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, sc.Err()
}

// machineCPU is the busy CPU time of the whole machine (all CPUs) from
// /proc/stat: user+nice+system+irq+softirq, and separately steal (time the
// hypervisor gave this VM's CPUs to someone else). Comparing busy time with
// the bench's own processes shows how much else ran during a phase.
func machineCPU() (busy, steal time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var n [9]int64
	for i := 1; i < 9; i++ {
		n[i], _ = strconv.ParseInt(f[i], 10, 64)
	}
	// user nice system idle iowait irq softirq steal
	return ticks(n[1] + n[2] + n[3] + n[6] + n[7]), ticks(n[8])
}

// loadAvg is the 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// machineInfo describes the box for the report.
type machineInfo struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemoryMB int64  `json:"memory_mb"`
	Kernel   string `json:"kernel"`
}

func readMachine() machineInfo {
	var m machineInfo
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "processor":
				m.CPUs++
			case "model name":
				if m.CPUModel == "" {
					m.CPUModel = strings.TrimSpace(v)
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemoryMB = n / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// pgCount is a snapshot of the server's activity counters.
type pgCount struct {
	ok                                  bool
	lsn                                 int64 // pg_current_wal_lsn() in bytes: exact
	commits, walRecords, walSync, walWr int64 // statistics: flushed by backends about once a second
	blksHit, blksRead                   int64
}

func (e *env) pgCounters(ctx context.Context) pgCount {
	var c pgCount
	err := e.stats.Pool().QueryRow(ctx, `
		SELECT pg_current_wal_lsn() - '0/0'::pg_lsn,
		       d.xact_commit, d.blks_hit, d.blks_read, w.wal_records, w.wal_sync, w.wal_write
		FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()`).
		Scan(&c.lsn, &c.commits, &c.blksHit, &c.blksRead, &c.walRecords, &c.walSync, &c.walWr)
	c.ok = err == nil
	return c
}

// pgPerReq is Postgres work per request of a phase.
type pgPerReq struct {
	WALBytes   float64 `json:"wal_bytes"`
	WALRecords float64 `json:"wal_records"`
	Commits    float64 `json:"commits"`
	WALSyncs   float64 `json:"wal_syncs"` // fdatasync calls on the WAL: < 1 per commit when commits share a flush
	WALWrites  float64 `json:"wal_writes"`
	BlksHit    float64 `json:"buffer_hits"`
	BlksRead   float64 `json:"buffer_reads"`
	Note       string  `json:"note"`
}

func pgPerRequest(a, b pgCount, n int) *pgPerReq {
	if !a.ok || !b.ok || n == 0 {
		return nil
	}
	f := func(x, y int64) float64 { return float64(y-x) / float64(n) }
	return &pgPerReq{
		WALBytes: f(a.lsn, b.lsn), WALRecords: f(a.walRecords, b.walRecords), Commits: f(a.commits, b.commits),
		WALSyncs: f(a.walSync, b.walSync), WALWrites: f(a.walWr, b.walWr),
		BlksHit: f(a.blksHit, b.blksHit), BlksRead: f(a.blksRead, b.blksRead),
		Note: "WAL bytes exact (LSN); other counters from pg_stat_*, which backends flush about once a second",
	}
}
