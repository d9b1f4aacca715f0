package fakeidp

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// ---- body faults ----

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readObject reads one JSON object from r, and nothing after it, token by
// token: the strings of an x_padding array are counted, never kept, so a
// 64 MiB body is checked in little memory. It returns the member names in
// order and the other members' values.
func readObject(t *testing.T, r io.Reader) (names []string, members map[string]any, padding int) {
	t.Helper()
	dec := json.NewDecoder(r)
	dec.UseNumber()
	delim := func(want json.Delim) {
		t.Helper()
		if tok, err := dec.Token(); err != nil || tok != want {
			t.Fatalf("JSON: got %v (%v), want %v", tok, err, want)
		}
	}
	members = map[string]any{}
	delim('{')
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			t.Fatalf("JSON member name: got %v (%v)", tok, err)
		}
		names = append(names, name)
		if name != "x_padding" {
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("JSON member %s: %v", name, err)
			}
			members[name] = v
			continue
		}
		delim('[')
		for dec.More() {
			if tok, err := dec.Token(); err != nil {
				t.Fatalf("JSON x_padding: %v", err)
			} else if _, ok := tok.(string); !ok {
				t.Fatalf("JSON x_padding: got %v, want strings", tok)
			}
			padding++
		}
		delim(']')
	}
	delim('}')
	if tok, err := dec.Token(); err != io.EOF { // a bad gzip checksum surfaces here too
		t.Fatalf("after the JSON object: got %v (%v), want the end", tok, err)
	}
	return names, members, padding
}

// inflateBomb sends req asking for gzip on a client that hands over the wire
// bytes, and checks the GzipBomb answer: under 1 MiB on the wire, one gzip
// member that inflates to a valid JSON object over 64 MiB with the padding
// first. It returns the object's other members.
func inflateBomb(t *testing.T, req *http.Request) map[string]any {
	t.Helper()
	req.Header.Set("Accept-Encoding", "gzip")
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s: %d, Content-Encoding %q, Content-Type %q", req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"))
	}
	wire := &countingReader{r: resp.Body}
	zr, err := gzip.NewReader(wire)
	if err != nil {
		t.Fatalf("gzip header: %v", err)
	}
	zr.Multistream(false)
	plain := &countingReader{r: zr}
	names, members, padding := readObject(t, plain)
	if rest, err := io.Copy(io.Discard, resp.Body); rest != 0 || err != nil {
		t.Errorf("%d bytes (%v) after the gzip member", rest, err)
	}
	if wire.n >= 1<<20 || plain.n <= 64<<20 {
		t.Errorf("%s: %d bytes on the wire inflate to %d, want < 1 MiB to > 64 MiB", req.URL.Path, wire.n, plain.n)
	}
	if resp.ContentLength != wire.n {
		t.Errorf("Content-Length %d, but %d bytes came", resp.ContentLength, wire.n)
	}
	if names[0] != "x_padding" || padding < 1000 {
		t.Errorf("members %v, %d padding strings: want the padding array first", names, padding)
	}
	t.Logf("%s: %d bytes on the wire, %d inflated", req.URL.Path, wire.n, plain.n)
	return members
}

func TestGzipBomb(t *testing.T) {
	e := start(t, Options{Kind: Google, User: googleUser()})
	e.SetFaults(Faults{GzipBomb: true})
	cfg := config(e, "openid", "email")
	code := approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {testClientID}, "code": {code}, "redirect_uri": {cbURL}}
	tok := inflateBomb(t, newRequest(t, "POST", e.Endpoints().TokenURL, form, nil))
	at, _ := tok["access_token"].(string)
	if at == "" || tok["id_token"] == nil {
		t.Fatalf("token answer members: %v", tok)
	}
	// The access token from inside the bomb works: the exchange was real.
	me := inflateBomb(t, newRequest(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(at)))
	if me["sub"] != googleUser().Subject {
		t.Errorf("userinfo members: %v", me)
	}

	// Go's client asks for gzip by itself and inflates transparently, as
	// the broker's does: more than 2 MiB come out of the small body.
	client := &http.Client{}
	defer client.CloseIdleConnections()
	resp, err := client.Do(newRequest(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(at)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 2<<20))
	resp.Body.Close()
	if !resp.Uncompressed || n != 2<<20 || err != nil {
		t.Errorf("default client: uncompressed %v, %d bytes (%v), want transparently inflated > 2 MiB", resp.Uncompressed, n, err)
	}

	// Not asked for gzip: the HugeBody answer.
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer raw.CloseIdleConnections()
	resp, err = raw.Do(newRequest(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(at)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if resp.Header.Get("Content-Encoding") != "" || len(body) <= 2<<20 || json.Unmarshal(body, &m) != nil || m["sub"] != googleUser().Subject {
		t.Errorf("without Accept-Encoding: Content-Encoding %q, %d bytes", resp.Header.Get("Content-Encoding"), len(body))
	}
	if pad, _ := m["x_padding"].(string); len(pad) < 2<<20 {
		t.Errorf("without Accept-Encoding: x_padding is %d characters, want the HugeBody string", len(pad))
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                    false,
		"gzip":                true,
		"deflate, GZIP;q=0.5": true,
		"br, gzip;q=0":        false,
		"identity":            false,
		"gzip2":               false,
	} {
		r := &http.Request{Header: http.Header{"Accept-Encoding": {header}}}
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: got %v, want %v", header, got, want)
		}
	}
}

// trickling counts the goroutines inside writeTrickle.
func trickling() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), ".(*Emulator).writeTrickle(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// checkTrickle sends req on a client with a 1s timeout: the headers and the
// first byte come at once, the body does not finish in time, and the handler
// returns once the client has given up.
func checkTrickle(t *testing.T, req *http.Request) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: headers: %v", req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != -1 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("%s: %d, Content-Length %d, Content-Type %q", req.URL.Path, resp.StatusCode, resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	var first [1]byte
	if _, err := io.ReadFull(resp.Body, first[:]); err != nil || first[0] != '{' {
		t.Fatalf("%s: first byte %q (%v)", req.URL.Path, first[0], err)
	}
	if d := time.Since(began); d > 500*time.Millisecond {
		t.Errorf("%s: first byte after %v, want at once", req.URL.Path, d)
	}
	if n := trickling(); n != 1 {
		t.Errorf("%d handlers trickling, want 1", n)
	}
	rest, err := io.ReadAll(resp.Body)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%s: reading the body: %v, want the client's timeout", req.URL.Path, err)
	}
	if d := time.Since(began); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("%s: gave up after %v, want the 1s timeout", req.URL.Path, d)
	}
	if len(rest) == 0 || len(rest) > 10 {
		t.Errorf("%s: %d more bytes in 1s, want a few (one per 200ms)", req.URL.Path, len(rest))
	}
	deadline := time.Now().Add(3 * time.Second)
	for trickling() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the trickling handler outlived its client by 3s", req.URL.Path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTrickle(t *testing.T) {
	e := start(t, Options{Kind: OIDC})
	cfg := config(e, "openid", "profile")
	code := approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
	tok, err := cfg.Exchange(ctxT(t), code)
	if err != nil {
		t.Fatal(err)
	}
	e.SetFaults(Faults{Trickle: 200 * time.Millisecond}) // a whole answer would take a minute
	code = approve(t, e, cfg.AuthCodeURL("s"), cbURL, "s")
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {testClientID}, "code": {code}, "redirect_uri": {cbURL}}
	checkTrickle(t, newRequest(t, "POST", e.Endpoints().TokenURL, form, nil))
	checkTrickle(t, newRequest(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken)))
}

// wantReset sends req and checks that the connection is reset after the
// endpoint got the request, with no response.
func wantReset(t *testing.T, e *Emulator, req *http.Request) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	before := e.CallCount(req.URL.Path)
	resp, err := client.Do(req)
	if resp != nil {
		resp.Body.Close()
		t.Fatalf("%s: got a response %d, want none", req.URL.Path, resp.StatusCode)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("%s: %v, want connection reset by peer", req.URL.Path, err)
	}
	if n := e.CallCount(req.URL.Path) - before; n != 1 {
		t.Errorf("%s: the endpoint got %d requests, want 1", req.URL.Path, n)
	}
}

func TestReset(t *testing.T) {
	e := start(t, Options{Kind: Kakao, User: kakaoUser()})
	ctx := ctxT(t)
	l := kakaoApprove(t, e, "profile_nickname")
	tok, err := l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatal(err)
	}

	e.SetFaults(Faults{Reset: true})
	l = kakaoApprove(t, e, "profile_nickname")
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {testClientID}, "code": {l.code}, "redirect_uri": {cbURL}, "code_verifier": {l.verifier}}
	wantReset(t, e, newRequest(t, "POST", e.Endpoints().TokenURL, form, nil))
	wantReset(t, e, newRequest(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken)))

	// The exchange happened before the reset: the code is spent.
	e.SetFaults(Faults{})
	_, err = l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
	retrieveError(t, err, 400, map[string]any{
		"error": "invalid_grant", "error_description": "authorization code not found for code=" + l.code, "error_code": "KOE320",
	})

	// BodyFaultsOnly spares the other endpoint.
	e.SetFaults(Faults{Reset: true, BodyFaultsOnly: "userinfo"})
	l = kakaoApprove(t, e, "profile_nickname")
	tok, err = l.cfg.Exchange(ctx, l.code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		t.Fatalf("token with the faults on userinfo only: %v", err)
	}
	wantReset(t, e, newRequest(t, "GET", e.Endpoints().UserinfoURL, nil, bearer(tok.AccessToken)))
}
