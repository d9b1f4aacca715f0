package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// signResult is the raw signing ceiling of the machine.
type signResult struct {
	Goroutines int     `json:"goroutines"`
	Seconds    float64 `json:"seconds"`
	Signatures int64   `json:"signatures"`
	PerSecond  float64 `json:"per_second"`
	// CPUPerSig is this process's CPU time per signature: what one
	// signature costs a core, the unit the broker's CPU is compared with.
	CPUPerSigMS float64 `json:"cpu_per_signature_ms"`
	// OtherCPUShare is the share of the machine's busy CPU time during the
	// measurement that was not this process (other load on the box).
	OtherCPUShare float64 `json:"other_cpu_share"`
	StealS        float64 `json:"steal_s"`
}

// signCeiling runs RSA-2048 PKCS#1 v1.5 SHA-256 signatures (crypto/rsa on
// a precomputed key, the primitive under every access token) with
// GOMAXPROCS goroutines for d.
func signCeiling(ctx context.Context, d time.Duration) (signResult, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return signResult{}, err
	}
	key.Precompute()
	digest := sha256.Sum256([]byte(`eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9`))
	if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil { // warm up
		return signResult{}, err
	}
	n := runtime.GOMAXPROCS(0)
	var (
		count atomic.Int64
		wg    sync.WaitGroup
		stop  atomic.Bool
	)
	cpu0, t0 := selfCPU(), time.Now()
	m0, st0 := machineCPU()
	for range n {
		wg.Go(func() {
			var local int64
			for !stop.Load() && ctx.Err() == nil {
				if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
					panic(err)
				}
				local++
			}
			count.Add(local)
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(t0)
	m1, st1 := machineCPU()
	cpu, mcpu := selfCPU()-cpu0, m1-m0
	r := signResult{
		Goroutines: n, Seconds: elapsed.Seconds(), Signatures: count.Load(),
	}
	r.PerSecond = float64(r.Signatures) / elapsed.Seconds()
	if r.Signatures > 0 {
		r.CPUPerSigMS = ms(cpu) / float64(r.Signatures)
	}
	if mcpu > 0 {
		r.OtherCPUShare = max(0, 1-float64(cpu)/float64(mcpu))
	}
	r.StealS = (st1 - st0).Seconds()
	return r, ctx.Err()
}
