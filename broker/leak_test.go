package broker_test

import (
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/fakeidp"
)

// Failing providers (timeouts, trickled bodies, resets, huge bodies, gzip
// bombs, 5xx) leave no goroutines and no memory behind, and a gzip bomb is
// never inflated past the 1 MiB cap. Not parallel: it counts the process's
// goroutines and allocations.
func TestProviderFaultsLeakNothing(t *testing.T) {
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto",
		Extra: "limits:\n  per_minute: { login: 0, callback: 0, token: 0 }\n"})
	em := env.Emulators["kakao"]
	settle := func() int {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		time.Sleep(300 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	loginAs(t, env, env.Client(), "kakao", "") // warm every pool and cache
	before := settle()
	runtime.GC()
	var mem0 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	heapBefore := mem0.HeapAlloc
	faults := []fakeidp.Faults{
		{TokenDelay: 3 * time.Second}, // beyond the 2 s provider timeout
		{UserinfoDelay: 3 * time.Second},
		{HugeBody: true},
		{GzipBomb: true},
		{Trickle: 200 * time.Millisecond, BodyFaultsOnly: "userinfo"},
		{Reset: true},
		{TokenStatus: 500},
		{IDToken: fakeidp.BadSignature},
	}
	for i := 0; i < 2; i++ {
		for _, f := range faults {
			c := env.Client()
			cb := approve(t, env, "kakao", startLogin(t, env, c, "kakao", ""))
			em.SetFaults(f)
			r := do(t, c, "GET", cb, nil, nil)
			em.SetFaults(fakeidp.Faults{})
			if r.StatusCode < 400 {
				t.Fatalf("fault %+v: status %d", f, r.StatusCode)
			}
		}
	}
	// A 64 MiB gzip bomb costs the broker about its 1 MiB cap, not the bomb.
	c := env.Client()
	cb := approve(t, env, "kakao", startLogin(t, env, c, "kakao", ""))
	em.SetFaults(fakeidp.Faults{GzipBomb: true, BodyFaultsOnly: "userinfo"})
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	r := do(t, c, "GET", cb, nil, nil)
	runtime.ReadMemStats(&m1)
	em.SetFaults(fakeidp.Faults{})
	wantStatus(t, r, 502)
	alloc := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("a gzip-bomb login allocated %.1f MiB", float64(alloc)/(1<<20))
	if alloc > 16<<20 {
		t.Fatalf("a gzip-bomb login allocated %d MiB", alloc>>20)
	}
	loginAs(t, env, env.Client(), "kakao", "") // the honest path still works
	var after int
	for i := 0; i < 20; i++ { // delayed emulator handlers finish on their own
		if after = settle(); after <= before+8 {
			break
		}
	}
	runtime.GC()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	t.Logf("goroutines: %d before, %d after; live heap %d MiB", before, after, mem.HeapAlloc>>20)
	if mem.HeapAlloc > heapBefore+32<<20 {
		t.Fatalf("live heap grew from %d to %d MiB", heapBefore>>20, mem.HeapAlloc>>20)
	}
	if after > before+8 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after %d failing logins\n%s", before, after, 2*len(faults)+1, buf[:runtime.Stack(buf, true)])
	}
}
