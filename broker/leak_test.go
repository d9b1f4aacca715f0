package broker_test

import (
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/providers/emulator"
)

// Failing providers (timeouts, huge bodies, 5xx) leave no goroutines
// behind. Not parallel: it counts the process's goroutines.
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
	faults := []emulator.Faults{
		{TokenDelay: 3 * time.Second}, // beyond the 2 s provider timeout
		{UserinfoDelay: 3 * time.Second},
		{HugeBody: true},
		{TokenStatus: 500},
		{IDToken: emulator.BadSignature},
	}
	for i := 0; i < 2; i++ {
		for _, f := range faults {
			c := env.Client()
			cb := approve(t, env, "kakao", startLogin(t, env, c, "kakao", ""))
			em.SetFaults(f)
			r := do(t, c, "GET", cb, nil, nil)
			em.SetFaults(emulator.Faults{})
			if r.StatusCode < 400 {
				t.Fatalf("fault %+v: status %d", f, r.StatusCode)
			}
		}
	}
	loginAs(t, env, env.Client(), "kakao", "") // the honest path still works
	var after int
	for i := 0; i < 20; i++ { // delayed emulator handlers finish on their own
		if after = settle(); after <= before+8 {
			break
		}
	}
	t.Logf("goroutines: %d before, %d after", before, after)
	if after > before+8 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after 10 failing logins\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
