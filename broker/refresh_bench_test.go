package broker_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/storage"
)

// BenchmarkRefreshEndToEnd drives POST /auth/token (cookie variant) through
// the real handler on a loopback server, against a real (pgtest) Postgres:
// cookie parsing, the rotation statement, signing the access token, the
// JSON answer and the new cookie. Each client owns its sessions and always
// sends the newest token. The profile of this benchmark is the broker's
// refresh path plus the client side of net/http in the same process:
//
//	go test ./broker -run '^$' -bench 'RefreshEndToEnd/parallel' -cpuprofile cpu.out
//	go tool pprof -top -cum -focus 'net/http.\(\*conn\).serve' broker.test cpu.out
//
// pgtest's cluster runs with fsync=off; cmd/brokerbench measures the
// durable configuration in a separate broker process.
func BenchmarkRefreshEndToEnd(b *testing.B) {
	env := brokertest.New(b, brokertest.Options{
		Providers: []string{"oauth2"},
		Extra:     "limits:\n  per_minute: { login: 0, callback: 0, token: 0 }",
	})
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	url := env.URL + "/auth/token"

	newTokens := func(n int) chan string {
		ch := make(chan string, n)
		for i := 0; i < n; i++ {
			uid := env.NewUser(b, "oauth2", fmt.Sprintf("bench-%d-%s", i, storage.NewID()))
			tok, _ := env.NewSession(b, uid)
			ch <- tok
		}
		return ch
	}
	refresh := func(tok string) (string, error) {
		req, err := http.NewRequest(http.MethodPost, url, nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Cookie", "refresh_token="+tok)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"access_token"`)) {
			return "", &statusError{resp.StatusCode, string(body)}
		}
		for _, c := range resp.Cookies() {
			if c.Name == "refresh_token" && c.Value != "" {
				return c.Value, nil
			}
		}
		return "", &statusError{resp.StatusCode, "no refresh cookie"}
	}

	b.Run("serial", func(b *testing.B) {
		tok := <-newTokens(1)
		b.ReportAllocs()
		for b.Loop() {
			next, err := refresh(tok)
			if err != nil {
				b.Fatal(err)
			}
			tok = next
		}
	})

	// parallel: 32 closed-loop clients on 2 cores (GOMAXPROCS×16 in
	// general), as cmd/brokerbench runs by default.
	const per = 16
	pool := newTokens(64) // each client takes one and puts back its newest
	b.Run("parallel", func(b *testing.B) {
		var errs atomic.Int64
		b.SetParallelism(per)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			tok := <-pool
			for pb.Next() {
				next, err := refresh(tok)
				if err != nil {
					if errs.Add(1) == 1 {
						b.Error(err)
					}
					return
				}
				tok = next
			}
			pool <- tok
		})
	})
}

type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string {
	return http.StatusText(e.status) + ": " + e.body
}
