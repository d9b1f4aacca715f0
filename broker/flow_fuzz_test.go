package broker

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

// The state and signup cookies are opened with fixed test keys (sizes as
// in production: a 64-byte hash key and a 32-byte AES-256 block key).
var (
	fuzzHashKey  = bytes.Repeat([]byte("fuzz-hash-key-64-bytes-long-...."), 2)
	fuzzBlockKey = []byte("fuzz-block-key-32-bytes-long-..!")
	fuzzOtherKey = bytes.Repeat([]byte("another-hash-key-of-64-bytes...."), 2)
)

// fuzzFlowNow is the broker clock of the fuzz target: before every genuine
// value's Expires, so readFlowCookie accepts them (securecookie's own
// MaxAge check uses the real clock).
var fuzzFlowNow = time.Unix(1767225600, 0)

// The only plaintexts the fuzz target ever seals. Their content is fixed, so
// a committed seed sealed with the test keys opens to one of them for as
// long as securecookie's MaxAge lets it open at all.
var (
	fuzzFlowStates = []flowState{
		{Provider: "kakao", State: "st-VZ1gD6sB3vQ8", Nonce: "nonce-0fK2", Verifier: "verifier-6fG9xLq3", ReturnTo: "https://app.example.com/app", Expires: fuzzFlowNow.Unix() + 600},
		{Provider: "naver", State: "st-link-2", ReturnTo: "/app/settings", LinkUser: "user-42", Expires: fuzzFlowNow.Unix() + 600},
	}
	fuzzSignups = []pendingSignup{
		{Provider: "google", Subject: "110169484474386276334", Name: "Alice Kim", Picture: "https://img.example/a.png", GrantEnc: []byte{0x01, 0x02, 0xfe, 0xff}, ReturnTo: "/app", CSRF: "csrf-Qm8", Expires: fuzzFlowNow.Unix() + 600},
	}
)

// newFuzzCookies builds the SecureCookie the way New does (server.go; keep
// the MaxAge and MaxLength lines in step with it).
func newFuzzCookies(hashKey, blockKey []byte) *securecookie.SecureCookie {
	c := securecookie.New(hashKey, blockKey)
	c.MaxAge(int(flowCookieTTL / time.Second))
	c.MaxLength(8192)
	return c
}

// FuzzFlowCookie opens arbitrary strings as the state and signup cookies,
// with securecookie.Decode and with readFlowCookie (Cookie header parsing,
// one value per name, the Expires check). It must never panic, and nothing
// may open except the values the target sealed itself: a string the fuzzer
// made up has no valid MAC. Genuine values (sealed at start, added as seeds)
// must open and come back equal; a value never opens under both cookie names
// or under two hash keys.
func FuzzFlowCookie(f *testing.F) {
	if len(fuzzHashKey) != 64 || len(fuzzOtherKey) != 64 || len(fuzzBlockKey) != 32 {
		f.Fatalf("test keys: got %d/%d/%d bytes, want 64/64/32", len(fuzzHashKey), len(fuzzOtherKey), len(fuzzBlockKey))
	}
	cookies := newFuzzCookies(fuzzHashKey, fuzzBlockKey)
	other := newFuzzCookies(fuzzOtherKey, fuzzBlockKey)
	srv := &Server{cookies: cookies, now: func() time.Time { return fuzzFlowNow }}
	sealedAt := time.Now()

	type genuine struct{ name, value string }
	var fresh []genuine
	seal := func(name string, v any) {
		enc, err := cookies.Encode(name, v)
		if err != nil {
			f.Fatalf("Encode(%s): %v", name, err)
		}
		fresh = append(fresh, genuine{name, enc})
		f.Add(enc)
		f.Add(`"` + enc + `"`)                            // quoted: the cookie parser unquotes it
		f.Add(enc + "; " + name + "=" + enc)              // sent twice: refused
		f.Add(enc[:len(enc)-1] + "\n" + enc[len(enc)-1:]) // base64 skips newlines
	}
	for _, v := range fuzzFlowStates {
		seal(stateCookie, v)
	}
	for _, v := range fuzzSignups {
		seal(signupCookie, v)
	}
	// The round trip, through the handler's reader.
	for i, g := range fresh {
		var got any
		var err error
		if g.name == stateCookie {
			var fs flowState
			err = srv.readFlowCookie(fuzzCookieRequest(g.name, g.value), flowCookie{name: g.name}, &fs, func() int64 { return fs.Expires })
			got = fs
		} else {
			var ps pendingSignup
			err = srv.readFlowCookie(fuzzCookieRequest(g.name, g.value), flowCookie{name: g.name}, &ps, func() int64 { return ps.Expires })
			got = ps
		}
		if err != nil || !isGenuine(g.name, got) {
			f.Fatalf("genuine cookie %d (%s) did not round-trip: got %+v, %v", i, g.name, got, err)
		}
	}

	f.Fuzz(func(t *testing.T, value string) {
		mustOpen := ""
		if time.Since(sealedAt) < flowCookieTTL-time.Minute {
			for _, g := range fresh {
				if g.value == value {
					mustOpen = g.name
				}
			}
		}
		for _, name := range []string{stateCookie, signupCookie} {
			// securecookie alone.
			var fs flowState
			var ps pendingSignup
			var dst any = &fs
			if name == signupCookie {
				dst = &ps
			}
			err := cookies.Decode(name, value, dst)
			opened := reflect.ValueOf(dst).Elem().Interface()
			if err == nil && !isGenuine(name, opened) {
				t.Fatalf("Decode(%s, %q) opened %+v, which was never sealed: forged without the key", name, value, opened)
			}
			if name == mustOpen && err != nil {
				t.Fatalf("Decode(%s) of a genuine value: %v", name, err)
			}
			if name != mustOpen && mustOpen != "" && err == nil {
				t.Fatalf("a %s value opened as %s", mustOpen, name)
			}
			// Under another hash key: never the same value as under ours
			// (and the only values sealed with it are the seeds).
			var ofs flowState
			var ops pendingSignup
			var odst any = &ofs
			if name == signupCookie {
				odst = &ops
			}
			if oerr := other.Decode(name, value, odst); oerr == nil {
				if err == nil {
					t.Fatalf("Decode(%s, %q) opened under two different hash keys", name, value)
				}
				if o := reflect.ValueOf(odst).Elem().Interface(); !isGenuine(name, o) {
					t.Fatalf("Decode(%s, %q) opened %+v under the other key, which was never sealed", name, value, o)
				}
			}

			// The handler's reader, from a Cookie header.
			var rfs flowState
			var rps pendingSignup
			var rerr error
			if name == stateCookie {
				rerr = srv.readFlowCookie(fuzzCookieRequest(name, value), flowCookie{name: name}, &rfs, func() int64 { return rfs.Expires })
				opened = rfs
			} else {
				rerr = srv.readFlowCookie(fuzzCookieRequest(name, value), flowCookie{name: name}, &rps, func() int64 { return rps.Expires })
				opened = rps
			}
			if rerr == nil && !isGenuine(name, opened) {
				t.Fatalf("readFlowCookie(%s=%q) opened %+v, which was never sealed", name, value, opened)
			}
			if rerr != nil && rerr != errFlowCookie {
				t.Fatalf("readFlowCookie(%s=%q): got %v, want errFlowCookie", name, value, rerr)
			}
			if n := len(fuzzCookieRequest(name, value).CookiesNamed(name)); n != 1 && rerr == nil {
				t.Fatalf("readFlowCookie(%s=%q) opened one of %d values", name, value, n)
			}
			if name == mustOpen && rerr != nil {
				t.Fatalf("readFlowCookie(%s) of a genuine value: %v", name, rerr)
			}
		}
	})
}

// The flow cookies' names under a plain-http issuer.
var (
	stateCookie  = func() string { c, _ := flowCookies(false); return c.name }()
	signupCookie = func() string { _, c := flowCookies(false); return c.name }()
)

// fuzzCookieRequest is a request whose Cookie header is name=value, verbatim
// (value may itself hold "; other=…" pairs, as a browser may send).
func fuzzCookieRequest(name, value string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "https://broker.example/auth/callback/kakao", nil)
	r.Header.Set("Cookie", name+"="+value)
	return r
}

// isGenuine reports whether v is one of the plaintexts sealed under name.
func isGenuine(name string, v any) bool {
	switch name {
	case stateCookie:
		for _, g := range fuzzFlowStates {
			if reflect.DeepEqual(v, g) {
				return true
			}
		}
	case signupCookie:
		for _, g := range fuzzSignups {
			if reflect.DeepEqual(v, g) {
				return true
			}
		}
	}
	return false
}
