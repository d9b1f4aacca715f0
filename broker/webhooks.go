package broker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/socialbroker/broker/storage"
)

// Event delivery (Standard Webhooks v1): every change writes its events in
// its own transaction (storage's outbox); each broker runs one delivery loop
// per configured endpoint, which leases due deliveries, sends them and
// records the outcome. A lease outlives a whole batch (every request of a
// batch runs at once, each bounded by webhookTimeout), so two brokers never
// send one delivery at the same time; a broker that dies mid-batch leaves
// its deliveries due again when the lease ends (at least once).
const (
	webhookTimeout  = 15 * time.Second
	webhookLease    = 4 * webhookTimeout
	webhookBatch    = 64
	webhookPoll     = time.Second // how often an idle loop looks for work that another broker wrote
	webhookMaxBody  = 64 << 10    // of an answer, read and discarded
	pendingInterval = 5 * time.Second
)

// webhookBody is what every request carries.
type webhookBody struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// webhookClient sends to receivers: no redirects followed, a timeout per
// request.
func webhookClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = webhookBatch
	return &http.Client{
		Transport:     tr,
		Timeout:       webhookTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// signWebhook returns the webhook-signature header value: "v1," and the
// base64 HMAC-SHA256 of "id.timestamp.body" under secret.
func signWebhook(secret []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// KickEvents wakes the delivery loops (an event was just committed).
func (s *Server) KickEvents() {
	s.eventsMu.Lock()
	defer s.eventsMu.Unlock()
	for _, k := range s.eventKicks {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

// SyncEventEndpoints makes the store's endpoint list match the config, so
// that every event committed from now on is queued for exactly the
// configured endpoints. Deliveries still pending for an endpoint that was
// removed are dropped, with a log line. Call it before serving.
func (s *Server) SyncEventEndpoints(ctx context.Context) error {
	eps := make([]storage.Endpoint, len(s.cfg.Events.Endpoints))
	for i, e := range s.cfg.Events.Endpoints {
		eps[i] = storage.Endpoint{URL: e.URL, Types: e.Types}
	}
	dropped, err := s.store.SyncEndpoints(ctx, eps)
	if err != nil {
		return fmt.Errorf("events: recording the endpoints: %w", err)
	}
	if dropped > 0 {
		s.log.Warn("events: endpoints removed from the config; their pending deliveries dropped", "deliveries", dropped)
	}
	return nil
}

// RunEvents delivers events until ctx ends: one loop per endpoint, so a
// slow or failing receiver delays only its own deliveries.
func (s *Server) RunEvents(ctx context.Context) {
	var wg sync.WaitGroup
	for _, e := range s.cfg.Events.Endpoints {
		kick := make(chan struct{}, 1)
		s.eventsMu.Lock()
		s.eventKicks = append(s.eventKicks, kick)
		s.eventsMu.Unlock()
		wg.Go(func() { s.deliverLoop(ctx, e, kick) })
	}
	wg.Go(func() { s.countPending(ctx) })
	wg.Wait()
}

// countPending keeps the pending-deliveries gauge current.
func (s *Server) countPending(ctx context.Context) {
	t := time.NewTicker(pendingInterval)
	defer t.Stop()
	for {
		if n, err := s.store.PendingDeliveries(ctx); err == nil {
			s.metrics.eventsPending.Set(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deliverLoop sends due deliveries to one endpoint, one batch at a time.
func (s *Server) deliverLoop(ctx context.Context, ep EventEndpoint, kick <-chan struct{}) {
	host := endpointHost(ep.URL)
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		n, err := s.DeliverEvents(ctx, ep)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("events: delivery round failed", "endpoint", host, "err", err)
		}
		if n == webhookBatch && err == nil {
			continue // more may be due
		}
		poll.Reset(webhookPoll)
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-poll.C:
		}
	}
}

// DeliverEvents runs one batch for endpoint ep: it leases up to
// webhookBatch due deliveries, sends them all at once and records each
// outcome. It returns how many it sent.
func (s *Server) DeliverEvents(ctx context.Context, ep EventEndpoint) (int, error) {
	ds, err := s.store.ClaimDeliveries(ctx, ep.URL, s.now(), webhookLease, webhookBatch)
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	results := make([]storage.DeliveryResult, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() { results[i] = s.deliver(ctx, ep, d) })
	}
	wg.Wait()
	// Recorded even when ctx ended meanwhile: what was sent stays sent.
	return len(ds), s.store.FinishDeliveries(context.WithoutCancel(ctx), ep.URL, s.now(), results)
}

// deliver makes one attempt and says what happens next.
func (s *Server) deliver(ctx context.Context, ep EventEndpoint, d storage.Delivery) storage.DeliveryResult {
	body, err := json.Marshal(webhookBody{Type: d.Type, Timestamp: d.CreatedAt.UTC().Format(time.RFC3339Nano), Data: d.Data})
	if err != nil { // stored data is JSON already; never happens
		return storage.DeliveryResult{EventID: d.EventID, Error: "unencodable"}
	}
	failure := s.post(ctx, ep, d.EventID, body)
	now := s.now()
	if failure == "" {
		s.metrics.eventsDelivered.Inc()
		s.metrics.eventLatency.Observe(now.Sub(d.CreatedAt).Seconds())
		return storage.DeliveryResult{EventID: d.EventID}
	}
	s.metrics.eventAttemptsFailed.Inc()
	retry := s.cfg.Events.Retry
	if d.Attempts > len(retry) {
		s.metrics.eventsGivenUp.Inc()
		s.log.Error("events: delivery given up", "event", d.EventID, "type", d.Type,
			"endpoint", endpointHost(ep.URL), "attempts", d.Attempts, "last_error", failure)
		return storage.DeliveryResult{EventID: d.EventID, Error: failure}
	}
	delay := retry[d.Attempts-1]
	delay += time.Duration(rand.Int64N(int64(delay)/5+1)) - delay/10 // ±10 %
	return storage.DeliveryResult{EventID: d.EventID, Error: failure, Next: now.Add(delay)}
}

// post sends one signed request. It returns "" for a 2xx answer, else a
// short reason (a status or an error class, never a body).
func (s *Server) post(ctx context.Context, ep EventEndpoint, id string, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return "bad_url"
	}
	ts := s.now().Unix()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "broker-webhooks/1")
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", signWebhook(ep.Secret, id, ts, body))
	resp, err := s.webhooks.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			return "timeout"
		}
		return "connection_failed"
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, webhookMaxBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return ""
	}
	return "http_" + strconv.Itoa(resp.StatusCode)
}

// endpointHost names an endpoint in logs without its path or query.
func endpointHost(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return "?"
}
