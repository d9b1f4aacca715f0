package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// loopResult is what a closed-loop run collected.
type loopResult struct {
	lats    []time.Duration // successful requests only
	errs    errorCounts
	elapsed time.Duration // until the last client finished
}

// closedLoop runs clients goroutines for d; each calls op back to back
// (a closed loop: a client sends its next request when the previous one
// was answered). op returns "" for success or the kind of failure, and
// stop when that client has nothing left to send.
func closedLoop(ctx context.Context, clients int, d time.Duration, op func(ctx context.Context, client int) (errKind string, stop bool)) loopResult {
	var (
		mu  sync.Mutex
		res = loopResult{errs: errorCounts{}}
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		wg.Go(func() {
			lats := make([]time.Duration, 0, 4096)
			errs := errorCounts{}
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				kind, stop := op(ctx, c)
				if kind == "" {
					lats = append(lats, time.Since(t0))
				} else {
					errs[kind]++
				}
				if stop {
					break
				}
			}
			mu.Lock()
			res.lats = append(res.lats, lats...)
			res.errs.add(errs)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// session is one refresh-token family driven by one client.
type session struct {
	token string // the newest refresh token; never sent twice
	dead  bool   // a failed answer: the newest token is unknown
}

// refresher drives POST /auth/token with the refresh cookie, each client
// on its own keep-alive connection (see rawConn).
type refresher struct {
	conns []rawConn    // by client
	req   [][]byte     // by client: the request being built
	own   [][]*session // by client
	next  []int        // by client: round-robin position

	sampleOnce sync.Once
	sample     []byte // one answer's body, to verify the access token
}

func newRefresher(addr string, tokens []string, clients int) *refresher {
	r := &refresher{conns: make([]rawConn, clients), req: make([][]byte, clients),
		own: make([][]*session, clients), next: make([]int, clients)}
	for c := range r.conns {
		r.conns[c].addr = addr
	}
	for i, t := range tokens {
		r.own[i%clients] = append(r.own[i%clients], &session{token: t})
	}
	return r
}

func (r *refresher) op(ctx context.Context, c int) (string, bool) {
	own := r.own[c]
	var s *session
	for range own {
		cand := own[r.next[c]%len(own)]
		r.next[c]++
		if !cand.dead {
			s = cand
			break
		}
	}
	if s == nil {
		return "no_live_session", true
	}
	req := append(r.req[c][:0], "POST /auth/token HTTP/1.1\r\nHost: "...)
	req = append(req, r.conns[c].addr...)
	req = append(req, "\r\nUser-Agent: brokerbench\r\nContent-Length: 0\r\nCookie: refresh_token="...)
	req = append(req, s.token...)
	req = append(req, "\r\n\r\n"...)
	r.req[c] = req
	resp, body, err := r.conns[c].do(req)
	if err != nil {
		s.dead = true
		if ctx.Err() != nil {
			return "canceled", true
		}
		return "transport", false
	}
	if resp.StatusCode != http.StatusOK {
		s.dead = true
		return strconv.Itoa(resp.StatusCode), false
	}
	next := cookieValue(resp, "refresh_token")
	if next == "" {
		s.dead = true
		return "no_cookie", false
	}
	if !bytes.Contains(body, []byte(`"access_token"`)) {
		return "bad_body", false
	}
	s.token = next
	r.sampleOnce.Do(func() { r.sample = body })
	return "", false
}

func (r *refresher) tokens() []string {
	var out []string
	for _, own := range r.own {
		for _, s := range own {
			if !s.dead {
				out = append(out, s.token)
			}
		}
	}
	return out
}

// cookieValue returns the value of a Set-Cookie of the answer.
func cookieValue(resp *http.Response, name string) string {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// rawConn is one keep-alive connection of a minimal HTTP/1.1 client: the
// caller hands over the request bytes, and the answer is read with
// http.ReadResponse. The load phases use it rather than net/http's client,
// which spends more CPU per request (two goroutines and channel hand-offs
// per connection) than the broker spends on a JWKS answer, and ≈ 0.2 ms per
// refresh: on a shared 2-CPU machine the load generator would take a large
// share of what it measures. A rawConn belongs to one client goroutine.
type rawConn struct {
	addr string // host:port
	nc   net.Conn
	br   *bufio.Reader
}

// do sends req and returns the answer with its whole body. After any error,
// or an answer that closes the connection, the next do dials again.
func (rc *rawConn) do(req []byte) (*http.Response, []byte, error) {
	if rc.nc == nil {
		nc, err := net.DialTimeout("tcp", rc.addr, 5*time.Second)
		if err != nil {
			return nil, nil, err
		}
		rc.nc, rc.br = nc, bufio.NewReader(nc)
	}
	resp, body, err := rc.exchange(req)
	if err != nil || resp.Close {
		rc.nc.Close()
		rc.nc = nil
	}
	return resp, body, err
}

func (rc *rawConn) exchange(req []byte) (*http.Response, []byte, error) {
	_ = rc.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := rc.nc.Write(req); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}

// jwksOp is one GET of the JWKS, conditional when etag is set, on client
// c's own connection to addr.
func jwksOp(addr, etag string, clients int) func(ctx context.Context, c int) (string, bool) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET /.well-known/jwks.json HTTP/1.1\r\nHost: %s\r\nUser-Agent: brokerbench\r\n", addr)
	if etag != "" {
		fmt.Fprintf(&b, "If-None-Match: %s\r\n", etag)
	}
	b.WriteString("\r\n")
	req := b.Bytes()
	want := http.StatusOK
	if etag != "" {
		want = http.StatusNotModified
	}
	conns := make([]rawConn, clients)
	for c := range conns {
		conns[c].addr = addr
	}
	return func(ctx context.Context, c int) (string, bool) {
		resp, body, err := conns[c].do(req)
		switch {
		case err != nil && ctx.Err() != nil:
			return "canceled", true
		case err != nil:
			return "transport", false
		case resp.StatusCode != want:
			return strconv.Itoa(resp.StatusCode), false
		case want == http.StatusOK && len(body) == 0:
			return "empty_body", false
		}
		return "", false
	}
}
