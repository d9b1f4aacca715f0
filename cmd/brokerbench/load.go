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

// refresher drives POST /auth/token with the refresh cookie.
type refresher struct {
	client *http.Client
	url    string
	own    [][]*session // by client
	next   []int        // by client: round-robin position

	sampleOnce sync.Once
	sample     []byte // one answer's body, to verify the access token
}

func newRefresher(client *http.Client, url string, tokens []string, clients int) *refresher {
	r := &refresher{client: client, url: url, own: make([][]*session, clients), next: make([]int, clients)}
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, nil)
	if err != nil {
		return "request", true
	}
	req.Header.Set("Cookie", "refresh_token="+s.token)
	resp, err := r.client.Do(req)
	if err != nil {
		s.dead = true
		if ctx.Err() != nil {
			return "canceled", true
		}
		return "transport", false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		s.dead = true
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

// jwksOp is one GET of the JWKS, conditional when etag is set, on client
// c's own keep-alive connection to addr. It is a minimal HTTP/1.1 client:
// the request bytes are built once and answers are read with
// http.ReadResponse. net/http's client spends more CPU per request (two
// goroutines and channel hand-offs per connection) than the broker spends
// serving a cached document, so on a shared 2-CPU machine it would mostly
// measure itself.
func jwksOp(addr, etag string, clients int) func(ctx context.Context, c int) (string, bool) {
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET /.well-known/jwks.json HTTP/1.1\r\nHost: %s\r\nUser-Agent: brokerbench\r\n", addr)
	if etag != "" {
		fmt.Fprintf(&req, "If-None-Match: %s\r\n", etag)
	}
	req.WriteString("\r\n")
	want := http.StatusOK
	if etag != "" {
		want = http.StatusNotModified
	}
	type conn struct {
		nc net.Conn
		br *bufio.Reader
	}
	conns := make([]conn, clients) // each used by its own client goroutine only
	return func(ctx context.Context, c int) (string, bool) {
		cn := &conns[c]
		if cn.nc == nil {
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return "transport", ctx.Err() != nil
			}
			cn.nc, cn.br = nc, bufio.NewReader(nc)
		}
		fail := func() (string, bool) {
			cn.nc.Close()
			cn.nc = nil
			if ctx.Err() != nil {
				return "canceled", true
			}
			return "transport", false
		}
		_ = cn.nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := cn.nc.Write(req.Bytes()); err != nil {
			return fail()
		}
		resp, err := http.ReadResponse(cn.br, nil)
		if err != nil {
			return fail()
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.Close {
			return fail()
		}
		if resp.StatusCode != want {
			return strconv.Itoa(resp.StatusCode), false
		}
		if want == http.StatusOK && n == 0 {
			return "empty_body", false
		}
		return "", false
	}
}
