package broker

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/socialbroker/broker/storage"
)

// Metrics are the broker's Prometheus metrics, on a registry of their own.
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	tokensIssued prometheus.Counter
	refreshes    *prometheus.CounterVec
	logins       *prometheus.CounterVec
	KeyRotations prometheus.Counter

	eventsPending       prometheus.Gauge
	eventsDelivered     prometheus.Counter
	eventAttemptsFailed prometheus.Counter
	eventsGivenUp       prometheus.Counter
	eventLatency        prometheus.Histogram

	counters  sync.Map // routeKey → prometheus.Counter
	durations sync.Map // route → prometheus.Observer
}

// NewMetrics registers the broker's metrics and the Go runtime collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "broker_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route"}),
		tokensIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "broker_access_tokens_issued_total", Help: "Access tokens signed.",
		}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_refresh_total", Help: "Refresh attempts by outcome: rotated, retried, reused, revoked, expired, unknown, missing or malformed with an admin listener; ok or refused on the public listener.",
		}, []string{"outcome"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_logins_total", Help: "Provider logins by provider and outcome.",
		}, []string{"provider", "outcome"}),
		KeyRotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "broker_key_rotations_total", Help: "Signing keys created by this process.",
		}),
		eventsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "broker_events_pending", Help: "Event deliveries neither delivered nor given up (all brokers).",
		}),
		eventsDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "broker_events_delivered_total", Help: "Event deliveries answered 2xx by their endpoint.",
		}),
		eventAttemptsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "broker_event_attempts_failed_total", Help: "Event delivery attempts that failed (non-2xx, redirect, timeout, connection).",
		}),
		eventsGivenUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "broker_events_given_up_total", Help: "Event deliveries given up after the last retry.",
		}),
		eventLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "broker_event_delivery_seconds", Help: "Time from an event's commit to its delivery.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60, 600, 3600},
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.tokensIssued, m.refreshes, m.logins, m.KeyRotations,
		m.eventsPending, m.eventsDelivered, m.eventAttemptsFailed, m.eventsGivenUp, m.eventLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// countRefresh counts one refresh attempt. The outcomes that the token
// endpoint's answer keeps identical (unknown, revoked, reused, …) are told
// apart only when /metrics is on the admin listener; on the public one they
// all count as "refused", so /metrics is no oracle for stolen tokens.
func (s *Server) countRefresh(outcome string) {
	if s.cfg.Admin.Listen == "" {
		if outcome == string(storage.Rotated) || outcome == string(storage.Retried) {
			outcome = "ok"
		} else {
			outcome = "refused"
		}
	}
	s.metrics.refreshes.WithLabelValues(outcome).Inc()
}

// routeKey names one (route, status) series.
type routeKey struct {
	route  string
	status int
}

// observe counts one request. The series handles are looked up once per
// (route, status) and kept, so the hot path does no label hashing.
func (m *Metrics) observe(route string, status int, d time.Duration) {
	k := routeKey{route, status}
	c, ok := m.counters.Load(k)
	if !ok {
		c, _ = m.counters.LoadOrStore(k, m.requests.WithLabelValues(route, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	o, ok := m.durations.Load(route)
	if !ok {
		o, _ = m.durations.LoadOrStore(route, m.duration.WithLabelValues(route))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
