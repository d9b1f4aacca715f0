package broker_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
)

// BenchmarkEventDelivery commits events at a steady 1,000 per second (in
// batches of 50 every 50 ms, as a busy broker would) while the delivery
// loop sends them to a local receiver, and reports delivered events per
// second, the p50/p99 time from commit to delivery, and this process's CPU
// per event (broker and receiver together; Postgres excluded).
//
//	go test -run '^$' -bench EventDelivery -benchtime 5000x ./broker/
//
// With -short it offers 5,000 events per second instead, to find the
// ceiling.
func BenchmarkEventDelivery(b *testing.B) {
	var mu sync.Mutex
	var lat []time.Duration
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Data struct {
				T int64 `json:"t"` // wall clock before the commit, in ns
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		d := time.Since(time.Unix(0, ev.Data.T))
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	env := brokertest.New(b, brokertest.Options{Providers: []string{"kakao"}, Extra: eventsConfig("", recv.URL)})
	env.Store.OnEvents(env.Broker.KickEvents)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go env.Broker.RunEvents(ctx)
	time.Sleep(100 * time.Millisecond)

	batch, every := 50, 50*time.Millisecond
	if testing.Short() { // -short: offer 5,000 events/s to find the ceiling
		every = 10 * time.Millisecond
	}
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	tick := time.NewTicker(every)
	for sent := 0; sent < b.N; sent += batch {
		n := min(batch, b.N-sent)
		// The events carry the wall clock of their commit: latency is
		// measured against it (the broker's own clock is the test clock).
		if _, err := env.Store.Pool().Exec(ctx, `
			SELECT broker_emit('user.created', jsonb_build_object('user_id', 'bench' || i, 'provider', 'kakao', 't', $2::bigint), $3)
			FROM generate_series(1, $1) i`, n, time.Now().UnixNano(), env.Clock.Now()); err != nil {
			b.Fatal(err)
		}
		env.Broker.KickEvents()
		<-tick.C
	}
	tick.Stop()
	for {
		mu.Lock()
		done := len(lat) >= b.N
		mu.Unlock()
		if done {
			break
		}
		if time.Since(start) > time.Duration(b.N)*time.Second/100+time.Minute {
			b.Fatalf("delivered %d of %d", len(lat), b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime)+syscall.TimevalToNsec(ru1.Stime)-
		syscall.TimevalToNsec(ru0.Utime)-syscall.TimevalToNsec(ru0.Stime)) * time.Nanosecond
	mu.Lock()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	mu.Unlock()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
}
