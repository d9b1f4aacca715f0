package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(3, time.Minute)
	now := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	ok, retry := l.Allow("a", now)
	if ok {
		t.Fatal("4th request in the same instant allowed, want refused")
	}
	if retry <= 0 || retry > 20*time.Second {
		t.Fatalf("retryAfter = %v, want (0, 20s]", retry)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another key was limited by a's requests")
	}
	if ok, _ := l.Allow("a", now.Add(retry)); !ok {
		t.Fatal("request after retryAfter refused")
	}
	if New(0, time.Minute) != nil {
		t.Fatal("limit 0 should turn the limiter off (nil)")
	}
	var off *Limiter
	if ok, _ := off.Allow("x", now); !ok {
		t.Fatal("nil limiter refused")
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		name, remote, xff, want string
	}{
		{"untrusted peer ignores XFF", "203.0.113.5:1234", "1.2.3.4", "203.0.113.5"},
		{"trusted proxy uses XFF", "10.0.0.2:1234", "198.51.100.7", "198.51.100.7"},
		{"right-most untrusted hop wins", "10.0.0.2:1234", "1.1.1.1, 198.51.100.7, 10.0.0.9", "198.51.100.7"},
		{"trusted proxy without XFF", "10.0.0.2:1234", "", "10.0.0.2"},
		{"garbage XFF stops at proxy", "10.0.0.2:1234", "nonsense", "10.0.0.2"},
		{"ipv6 peer", "[2001:db8::1]:443", "1.2.3.4", "2001:db8::1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := ClientAddr(r, trusted); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

// IPv6 clients count per /64: new addresses from one allocation share
// one bucket; another /64 and IPv4 addresses count on their own.
func TestLimiterIPv6PerSlash64(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New(2, time.Minute)
	for _, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"} {
		if ok, _ := l.Allow(a, now); !ok {
			t.Fatalf("%s: refused within the burst", a)
		}
	}
	if ok, _ := l.Allow("2001:db8:1:2:dead:beef::7", now); ok {
		t.Fatal("a third address of the same /64 was allowed past the burst")
	}
	for _, a := range []string{"2001:db8:1:3::1", "192.0.2.1", "192.0.2.2"} {
		if ok, _ := l.Allow(a, now); !ok {
			t.Fatalf("%s: refused, but it is another client", a)
		}
	}
}

// The limiter's memory is bounded however many clients it sees.
func TestLimiterBoundedMemory(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New(1, time.Hour).WithMaxKeys(100)
	for i := range 10_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if ok, _ := l.Allow(a.String(), now); !ok {
			t.Fatalf("%s: refused on its first request", a)
		}
	}
	if n := len(l.tat); n > 100 {
		t.Fatalf("buckets = %d, want at most 100", n)
	}
	// A client still in memory keeps its limit.
	if ok, _ := l.Allow("198.51.100.1", now); !ok {
		t.Fatal("new client refused")
	}
	if ok, _ := l.Allow("198.51.100.1", now); ok {
		t.Fatal("second request within the period allowed")
	}
}
