// Package ratelimit limits requests per client address with GCRA (a token
// bucket of `burst` requests refilled evenly over a period), and finds the
// client address behind trusted proxies.
package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Limiter allows n requests per period per key, in bursts up to n. Keys
// that are IPv6 addresses count per /64 (one subscriber's allocation, where
// every address is the same client). A nil *Limiter allows everything.
//
// It remembers at most maxKeys buckets: a client spreading requests over
// ever new addresses cannot grow it without bound. When it is full, a
// random bucket is forgotten to make room, which only ever grants that key
// its full burst again.
type Limiter struct {
	interval time.Duration // time to earn one request
	tau      time.Duration // burst tolerance
	maxKeys  int
	mu       sync.Mutex
	tat      map[string]time.Time // theoretical arrival time per key
	swept    time.Time
}

// DefaultMaxKeys is how many buckets a limiter keeps at most (a few MiB).
const DefaultMaxKeys = 100_000

// New returns a limiter of n requests per period, or nil when n <= 0 (off).
func New(n int, period time.Duration) *Limiter {
	if n <= 0 {
		return nil
	}
	iv := period / time.Duration(n)
	return &Limiter{interval: iv, tau: iv * time.Duration(n), maxKeys: DefaultMaxKeys, tat: map[string]time.Time{}}
}

// WithMaxKeys sets how many buckets l keeps at most.
func (l *Limiter) WithMaxKeys(n int) *Limiter {
	if l != nil && n > 0 {
		l.maxKeys = n
	}
	return l
}

// bucket is the key a client address counts under: an IPv6 address by its
// /64, anything else as it is.
func bucket(key string) string {
	a, err := netip.ParseAddr(key)
	if err != nil || !a.Is6() || a.Is4In6() {
		return key
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return key
	}
	return p.String()
}

// Allow records one request for key at now. When refused, retryAfter says
// how long until the next request would be allowed.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	key = bucket(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	tat, known := l.tat[key]
	if !known && len(l.tat) >= l.maxKeys {
		for k := range l.tat { // map order is random: O(1) per eviction
			delete(l.tat, k)
			break
		}
	}
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(l.interval)
	if over := next.Sub(now) - l.tau; over > 0 {
		return false, over
	}
	l.tat[key] = next
	return true, 0
}

// sweep forgets keys whose bucket is full again, at most once a period.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < l.tau {
		return
	}
	l.swept = now
	for k, t := range l.tat {
		if t.Before(now) {
			delete(l.tat, k)
		}
	}
}

// ClientAddr returns the address a request comes from: the TCP peer, or,
// when the peer is a trusted proxy, the right-most X-Forwarded-For entry
// that is not itself a trusted proxy.
func ClientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, peer, err := peerAddr(r)
	if err != nil {
		return host
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client.String() // garbage: stop at the last address we could trust
			}
			client = a.Unmap()
			if !isTrusted(client, trusted) {
				return client.String()
			}
		}
	}
	return client.String()
}

// FromTrustedProxy reports whether the request's TCP peer is in trusted.
func FromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	_, peer, err := peerAddr(r)
	return err == nil && isTrusted(peer, trusted)
}

// peerAddr is the request's TCP peer: its host part, and as an address.
func peerAddr(r *http.Request) (string, netip.Addr, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	return host, peer.Unmap(), err
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
