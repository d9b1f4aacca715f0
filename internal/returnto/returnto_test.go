package returnto

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
)

// mainAllowed is the policy most tests run against.
var mainAllowed = []string{
	"https://app.example.com/app/",
	"https://www.example.com/",
	"https://api.example.com:8443/v1",
	"http://127.0.0.1:8080/",
	"http://[::1]:8080/cb/",
}

const mainDefault = "https://app.example.com/app/"

func mustNew(t testing.TB, allowed []string, def string) *Policy {
	t.Helper()
	p, err := New(allowed, def)
	if err != nil {
		t.Fatalf("New(%q, %q): got error %v, want nil", allowed, def, err)
	}
	return p
}

func TestResolveAccepted(t *testing.T) {
	p := mustNew(t, mainAllowed, mainDefault)
	tests := []struct{ in, want string }{
		{"", "https://app.example.com/app/"},
		{"https://app.example.com/app/", "https://app.example.com/app/"},
		{"https://app.example.com/app/x?y=1#z", "https://app.example.com/app/x?y=1#z"},
		{"https://app.example.com/app/x/y/", "https://app.example.com/app/x/y/"},
		// case folding of scheme and host; path case is kept
		{"HTTPS://APP.Example.COM/app/X", "https://app.example.com/app/X"},
		{"hTtPs://app.example.com/app/", "https://app.example.com/app/"},
		// default port dropped, trailing host dot dropped
		{"https://app.example.com:443/app/x", "https://app.example.com/app/x"},
		{"https://app.example.com:00443/app/x", "https://app.example.com/app/x"},
		{"https://app.example.com./app/x", "https://app.example.com/app/x"},
		{"https://APP.EXAMPLE.COM.:443/app/x", "https://app.example.com/app/x"},
		// relative paths resolve against the default's origin
		{"/app/", "https://app.example.com/app/"},
		{"/app/x?y=1&z=2#frag", "https://app.example.com/app/x?y=1&z=2#frag"},
		{"/app/x?", "https://app.example.com/app/x"},
		{"/app/x#", "https://app.example.com/app/x"},
		{"/app/x?#", "https://app.example.com/app/x"},
		// dot segments that stay inside the allowed path
		{"/app/a/../b", "https://app.example.com/app/b"},
		{"/app/./b", "https://app.example.com/app/b"},
		{"/app/%2e/b", "https://app.example.com/app/b"},
		{"/app/a/%2E%2e/b", "https://app.example.com/app/b"},
		{"/app/a/.%2e/b", "https://app.example.com/app/b"},
		{"/app/a/..", "https://app.example.com/app/"},
		{"/app/a/.", "https://app.example.com/app/a/"},
		{"/app/a/b/../../c/", "https://app.example.com/app/c/"},
		{"/x/../app/y", "https://app.example.com/app/y"},
		{"https://app.example.com/app/a/../b?c=../d", "https://app.example.com/app/b?c=../d"},
		// segments that merely contain dots are not dot segments
		{"/app/.../x", "https://app.example.com/app/.../x"},
		{"/app/..x/.y", "https://app.example.com/app/..x/.y"},
		{"/app/a.b;c=d", "https://app.example.com/app/a.b;c=d"},
		// percent-encoding canonicalisation in the path
		{"/app/%7euser", "https://app.example.com/app/~user"},
		{"/app/%41%62c", "https://app.example.com/app/Abc"},
		{"/app/a%3fb%23c", "https://app.example.com/app/a%3Fb%23c"},
		{"/app/a%20b", "https://app.example.com/app/a%20b"},
		{"/app/100%25", "https://app.example.com/app/100%25"},
		{`/app/a"b<c>`, "https://app.example.com/app/a%22b%3Cc%3E"},
		{"/app/a[b]{c}|d^e`f", "https://app.example.com/app/a%5Bb%5D%7Bc%7D%7Cd%5Ee%60f"},
		{"/app/@evil.com", "https://app.example.com/app/@evil.com"},
		{"/app/x:y", "https://app.example.com/app/x:y"},
		// query and fragment kept, re-escaped where needed
		{"/app/x?q=a%20b&r=%e2%82%ac", "https://app.example.com/app/x?q=a%20b&r=%E2%82%AC"},
		{"/app/x?q=<script>", "https://app.example.com/app/x?q=%3Cscript%3E"},
		{"/app/x?q=50%", "https://app.example.com/app/x?q=50%25"},
		{"/app/x?q=%zz", "https://app.example.com/app/x?q=%25zz"},
		{"/app/x?a=1?b=2/c:d@e", "https://app.example.com/app/x?a=1?b=2/c:d@e"},
		{"/app/x?next=//evil.com", "https://app.example.com/app/x?next=//evil.com"},
		{"/app/x#a#b", "https://app.example.com/app/x#a%23b"},
		{"/app/x#/route?x=1", "https://app.example.com/app/x#/route?x=1"},
		{`/app/x?"'`, "https://app.example.com/app/x?%22'"},
		{"/app/x?%0d%0aSet-Cookie:x", "https://app.example.com/app/x?%0D%0ASet-Cookie:x"},
		// other entries: root path, explicit port, path without trailing slash
		{"https://www.example.com", "https://www.example.com/"},
		{"https://www.example.com?x=1", "https://www.example.com/?x=1"},
		{"https://www.example.com#top", "https://www.example.com/#top"},
		{"https://www.example.com/anything/at/all", "https://www.example.com/anything/at/all"},
		{"https://api.example.com:8443/v1", "https://api.example.com:8443/v1"},
		{"https://api.example.com:8443/v1/", "https://api.example.com:8443/v1/"},
		{"https://api.example.com:8443/v1/users", "https://api.example.com:8443/v1/users"},
		{"https://api.example.com:8443/v1/users/..", "https://api.example.com:8443/v1/"},
		{"http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"},
		{"http://127.0.0.1.:8080", "http://127.0.0.1:8080/"},
		{"http://[::1]:8080/cb/x", "http://[::1]:8080/cb/x"},
		{"http://[0:0::1]:8080/cb/", "http://[::1]:8080/cb/"},
		{"HTTP://[0000:0000:0000:0000:0000:0000:0000:0001]:8080/cb/", "http://[::1]:8080/cb/"},
	}
	// the longest acceptable output is exactly maxLen bytes
	long := strings.Repeat("a", maxLen-len("https://app.example.com/app/"))
	tests = append(tests, struct{ in, want string }{"/app/" + long, "https://app.example.com/app/" + long})
	for _, tc := range tests {
		got, err := p.Resolve(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q): got %q, %v; want %q, nil", tc.in, got, err, tc.want)
			continue
		}
		again, err := p.Resolve(got)
		if err != nil || again != got {
			t.Errorf("Resolve(Resolve(%q)) = Resolve(%q): got %q, %v; want %q, nil", tc.in, got, again, err, got)
		}
	}
}

func TestResolveRefused(t *testing.T) {
	p := mustNew(t, mainAllowed, mainDefault)
	tests := []struct {
		in     string
		reason *refusal
	}{
		// origin / path mismatch
		{"https://evil.com/", errOriginNotAllow},
		{"https://app.example.com/", errPathNotAllowed},
		{"https://app.example.com/app", errPathNotAllowed},
		{"https://app.example.com/apple", errPathNotAllowed},
		{"http://app.example.com/app/", errOriginNotAllow},
		{"https://app.example.com:8443/app/", errOriginNotAllow},
		{"https://api.example.com/v1", errOriginNotAllow},
		{"https://api.example.com:8443/v10", errPathNotAllowed},
		{"https://api.example.com:8443/v", errPathNotAllowed},
		{"https://app.example.com.evil.com/app/", errOriginNotAllow},
		{"https://evil-app.example.com/app/", errOriginNotAllow},
		{"http://127.0.0.1/x", errOriginNotAllow},
		{"http://[::2]:8080/cb/", errOriginNotAllow},
		{"http://[::1]:8080/cb", errPathNotAllowed},
		{"/", errPathNotAllowed},
		{"/apple", errPathNotAllowed},
		{"/evil.com", errPathNotAllowed},
		// dot segments that escape the allowed path or the root
		{"/app/../admin", errPathNotAllowed},
		{"/app/%2e%2e/admin", errPathNotAllowed},
		{"/app/.%2e/admin", errPathNotAllowed},
		{"/app/%2E./admin", errPathNotAllowed},
		{"/app/x/../../admin", errPathNotAllowed},
		{"/app/..", errPathNotAllowed},
		{"/app/../../evil", errAboveRoot},
		{"/..", errAboveRoot},
		{"/%2e%2e/app/", errAboveRoot},
		{"/app/..;/admin", errDotParams},
		{"/app/.;x/admin", errDotParams},
		{"/app/..%3b/admin", errDotParams},
		// characters refused anywhere
		{"/app/\t/x", errForbiddenChar},
		{"/\t/evil.com", errForbiddenChar},
		{"/app/x\r\nSet-Cookie: a=b", errForbiddenChar},
		{" /app/", errForbiddenChar},
		{"/app/ ", errForbiddenChar},
		{"\x00/app/", errForbiddenChar},
		{"/app/\x7f", errForbiddenChar},
		{`/\evil.com`, errForbiddenChar},
		{`/app/\x`, errForbiddenChar},
		{"https://app.example.com/app/\u00e9", errForbiddenChar},
		{"/app/\uff0f", errForbiddenChar},
		{"//evil\u3002com", errForbiddenChar},
		{"\u3031evil.com", errForbiddenChar},
		{"/app/x?q=\u00e9", errForbiddenChar},
		{"/app/x#\u00e9", errForbiddenChar},
		// structure
		{"//evil.com", errProtoRelative},
		{"///evil.com", errProtoRelative},
		{"https:evil.com", errSlashes},
		{"https:app.example.com/app/", errSlashes},
		{"https:/app.example.com/app/", errSlashes},
		{"https:///app.example.com/app/", errSlashes},
		{"https://", errSlashes},
		{"https://?x", errEmptyHost},
		{"https://#x", errEmptyHost},
		{"https://:443/", errEmptyHost},
		{"evil.com", errNotURL},
		{"app/x", errNotURL},
		{"?x=1", errNotURL},
		{"#x", errNotURL},
		{"@evil.com", errNotURL},
		{":evil.com", errNotURL},
		{"1https://app.example.com/app/", errNotURL},
		{"javascript:alert(1)", errScheme},
		{"JaVaScRiPt:alert(1)", errScheme},
		{"data:text/html,x", errScheme},
		{"ftp://app.example.com/app/", errScheme},
		{"https+x://app.example.com/app/", errScheme},
		// authority
		{"https://app.example.com@evil.com/", errUserinfo},
		{"https://user@app.example.com/app/", errUserinfo},
		{"https://user:pw@app.example.com/app/", errUserinfo},
		{"https://@app.example.com/app/", errUserinfo},
		{"https://app.example.com%2eevil.com/", errHostPercent},
		{"https://%61pp.example.com/app/", errHostPercent},
		{"https://app.example.com:/app/", errPort},
		{"https://app.example.com:0/app/", errPort},
		{"https://app.example.com:65536/app/", errPort},
		{"https://app.example.com:443443/app/", errPort},
		{"https://app.example.com:+443/app/", errPort},
		{"https://app.example.com:0x1bb/app/", errPort},
		{"https://app.example.com:443:443/app/", errHost},
		{"https://app_example.com/app/", errHost},
		{"https://-app.example.com/app/", errHost},
		{"https://app-.example.com/app/", errHost},
		{"https://app..example.com/app/", errHost},
		{"https://.app.example.com/app/", errHost},
		{"https://app.example.com../app/", errHost},
		{"https://./app/", errEmptyHost},
		{"https://app.example.com;evil.com/", errHost},
		{"https://" + strings.Repeat("a", 64) + ".com/", errHost},
		{"https://" + strings.Repeat("a.", 127) + "com/", errHost},
		{"https://evil.com\"/", errHost},
		{"http://3627734734:8080/", errIPv4},
		{"http://0x7f000001:8080/", errIPv4},
		{"http://0x7f.0.0.1:8080/", errIPv4},
		{"http://0177.0.0.1:8080/", errIPv4},
		{"http://127.1:8080/", errIPv4},
		{"http://127.0.0.01:8080/", errIPv4},
		{"http://256.0.0.1:8080/", errIPv4},
		{"http://evil.0x:8080/", errIPv4},
		{"http://evil.123:8080/", errIPv4},
		{"http://[::1:8080/cb/", errIPv6},
		{"http://[127.0.0.1]:8080/", errIPv6},
		{"http://[fe80::1%25eth0]:8080/cb/", errHostPercent},
		{"http://[::1]x:8080/cb/", errHost},
		{"http://[evil.com]/", errIPv6},
		// path encoding
		{"/app/%2f%2fevil.com", errEncodedSep},
		{"/app/%2F", errEncodedSep},
		{"/app/%5c", errEncodedSep},
		{"/app/%09", errEncodedSep},
		{"/app/%00", errEncodedSep},
		{"/app/%7f", errEncodedSep},
		{"/app/%c3%a9", errEncodedSep},
		{"/app/%E3%80%82", errEncodedSep},
		{"/app/%", errPercent},
		{"/app/%4", errPercent},
		{"/app/%zz", errPercent},
		{"/app/%252f", errDoubleEncoded},
		{"/app/%25%32%66", errDoubleEncoded},
		{"/app//evil.com", errEmptySegment},
		{"/app/.//evil.com", errEmptySegment},
		{"https://app.example.com//evil.com", errEmptySegment},
		// length, of the input and of the escaped output
		{"/app/" + strings.Repeat("a", maxLen), errTooLong},
		{"/app/x#" + strings.Repeat("]", 2000), errTooLong},
		{"/app/x?" + strings.Repeat("<", 1400), errTooLong},
	}
	for _, tc := range tests {
		got, err := p.Resolve(tc.in)
		if got != "" || !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Resolve(%q): got %q, %v; want \"\", error wrapping ErrNotAllowed", tc.in, got, err)
			continue
		}
		var r *refusal
		if !errors.As(err, &r) || r != tc.reason {
			t.Errorf("Resolve(%q): got reason %q, want %q", tc.in, err, tc.reason.reason)
		}
	}
}

func TestEntryPathBoundary(t *testing.T) {
	tests := []struct {
		entry string
		in    string
		ok    bool
	}{
		{"https://h.example/app", "/app", true},
		{"https://h.example/app", "/app/", true},
		{"https://h.example/app", "/app/x", true},
		{"https://h.example/app", "/apple", false},
		{"https://h.example/app", "/ap", false},
		{"https://h.example/app", "/app.x", false},
		{"https://h.example/app", "/app;x", false},
		{"https://h.example/app/", "/app/", true},
		{"https://h.example/app/", "/app/x", true},
		{"https://h.example/app/", "/app", false},
		{"https://h.example/app/", "/apple", false},
		{"https://h.example/", "/", true},
		{"https://h.example/", "/anything", true},
		{"https://h.example", "/anything", true},
		{"https://h.example/%61pp", "/app/x", true},
		{"https://h.example/App", "/app", false},
	}
	for _, tc := range tests {
		p := mustNew(t, []string{tc.entry}, tc.entry)
		got, err := p.Resolve(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("entry %q, Resolve(%q): got %q, %v; want accepted=%v", tc.entry, tc.in, got, err, tc.ok)
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		allowed []string
		def     string
		naming  string // the error must contain this
	}{
		{nil, "https://app.example.com/", "redirects.allowed is empty"},
		{[]string{"https://app.example.com/"}, "", "redirects.default is empty"},
		{[]string{""}, "https://app.example.com/", `entry ""`},
		{[]string{"https://app.example.com/", "/app/"}, "https://app.example.com/", `entry "/app/"`},
		{[]string{"app.example.com"}, "https://app.example.com/", `entry "app.example.com"`},
		{[]string{"ftp://app.example.com/"}, "https://app.example.com/", `entry "ftp://app.example.com/"`},
		{[]string{"https://user@app.example.com/"}, "https://app.example.com/", `entry "https://user@app.example.com/"`},
		{[]string{"https://app.example.com/?x=1"}, "https://app.example.com/", `entry "https://app.example.com/?x=1"`},
		{[]string{"https://app.example.com/?"}, "https://app.example.com/", `entry "https://app.example.com/?"`},
		{[]string{"https://app.example.com/#f"}, "https://app.example.com/", `entry "https://app.example.com/#f"`},
		{[]string{"https://app.example.com/a//b"}, "https://app.example.com/", `entry "https://app.example.com/a//b"`},
		{[]string{"https://\u00e4pp.example.com/"}, "https://app.example.com/", "entry \"https://\u00e4pp.example.com/\""},
		{[]string{"https://app.example.com/app/"}, "https://app.example.com/", `default "https://app.example.com/"`},
		{[]string{"https://app.example.com/app/"}, "https://evil.com/app/", `default "https://evil.com/app/"`},
		{[]string{"https://app.example.com/app/"}, "/app/", `default "/app/": default must be an absolute URL`},
		{[]string{"https://app.example.com/app/"}, "//app.example.com/app/", `default "//app.example.com/app/"`},
	}
	for _, tc := range tests {
		p, err := New(tc.allowed, tc.def)
		if p != nil || err == nil || !strings.Contains(err.Error(), tc.naming) {
			t.Errorf("New(%q, %q): got %v, %v; want nil, error containing %q", tc.allowed, tc.def, p, err, tc.naming)
		}
	}
}

func TestDefault(t *testing.T) {
	tests := []struct{ allowed, def, want string }{
		{"https://app.example.com/", "HTTPS://App.Example.Com:443", "https://app.example.com/"},
		{"https://app.example.com/", "https://app.example.com/home?welcome=1#top", "https://app.example.com/home?welcome=1#top"},
		{"http://localhost:8080/", "http://LOCALHOST:8080/a/../b", "http://localhost:8080/b"},
	}
	for _, tc := range tests {
		p := mustNew(t, []string{tc.allowed}, tc.def)
		if got := p.Default(); got != tc.want {
			t.Errorf("Default() with def %q: got %q, want %q", tc.def, got, tc.want)
		}
		if got, err := p.Resolve(""); got != tc.want || err != nil {
			t.Errorf("Resolve(\"\") with def %q: got %q, %v; want %q, nil", tc.def, got, err, tc.want)
		}
		if got, err := p.Resolve(p.Default()); got != tc.want || err != nil {
			t.Errorf("Resolve(Default()) with def %q: got %q, %v; want %q, nil", tc.def, got, err, tc.want)
		}
	}
}

func TestRelativeUsesDefaultOrigin(t *testing.T) {
	p := mustNew(t, []string{"https://a.example/", "https://b.example:8443/"}, "https://b.example:8443/start")
	got, err := p.Resolve("/next?x=1")
	if want := "https://b.example:8443/next?x=1"; got != want || err != nil {
		t.Errorf("Resolve(%q): got %q, %v; want %q, nil", "/next?x=1", got, err, want)
	}
}

func TestRefusalDoesNotEchoInput(t *testing.T) {
	p := mustNew(t, mainAllowed, mainDefault)
	secret := "/app/" + strings.Repeat("Z", 50) + "%2f" + strings.Repeat("Q", 200)
	_, err := p.Resolve(secret)
	if err == nil {
		t.Fatalf("Resolve(%q): got nil error, want refusal", secret)
	}
	msg := err.Error()
	if len(msg) > 100 || strings.Contains(msg, "ZZZZ") || strings.Contains(msg, "QQQQ") {
		t.Errorf("Resolve(long input): got error %q (len %d), want <= 100 chars and no echo of the input", msg, len(msg))
	}
	if !strings.HasPrefix(msg, "return_to not allowed: ") {
		t.Errorf("error text: got %q, want prefix %q", msg, "return_to not allowed: ")
	}
}

// whatwgHost is a small, independent, browser-like host extractor used to
// cross-check outputs: strip ASCII tab/CR/LF, trim C0 controls and spaces,
// treat "\" as "/", skip any number of slashes after a special scheme, take
// the authority up to "/", "?" or "#", drop userinfo and port, percent-decode
// and lowercase. ok is false when s is not an absolute http(s)/ws(s) URL.
func whatwgHost(s string) (host string, ok bool) {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimFunc(s, func(r rune) bool { return r <= 0x20 })
	s = strings.ReplaceAll(s, `\`, "/")
	colon := strings.IndexByte(s, ':')
	if colon <= 0 {
		return "", false
	}
	switch strings.ToLower(s[:colon]) {
	case "http", "https", "ws", "wss", "ftp":
	default:
		return "", false
	}
	rest := strings.TrimLeft(s[colon+1:], "/")
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") {
		if i := strings.IndexByte(rest, ']'); i >= 0 {
			rest = rest[1:i]
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	if dec, err := url.PathUnescape(rest); err == nil {
		rest = dec
	}
	for _, sep := range []string{"\u3002", "\uff0e", "\uff61"} {
		rest = strings.ReplaceAll(rest, sep, ".")
	}
	return strings.TrimSuffix(strings.ToLower(rest), "."), true
}

func TestWhatwgHostHelper(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://app.example.com/", "app.example.com"},
		{"https:evil.com", "evil.com"},
		{"https:///evil.com", "evil.com"},
		{`https:\\evil.com\@app.example.com`, "evil.com"},
		{"https://app.example.com@evil.com/", "evil.com"},
		{"https://evil.com#@app.example.com/", "evil.com"},
		{"https://evil.com?@app.example.com/", "evil.com"},
		{" \x01https://ev\til.com:443/", "evil.com"},
		{"https://evil%2ecom/", "evil.com"},
		{"https://EVIL\u3002com./", "evil.com"},
		{"http://[::1]:8080/", "::1"},
	}
	for _, tc := range tests {
		got, ok := whatwgHost(tc.in)
		if !ok || got != tc.want {
			t.Errorf("whatwgHost(%q): got %q, %v; want %q, true", tc.in, got, ok, tc.want)
		}
	}
}

func readCorpus(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/openredirects.txt")
	if err != nil {
		t.Fatalf("reading corpus: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 150 {
		t.Fatalf("corpus: got %d payloads, want >= 150", len(lines))
	}
	return lines
}

func TestOpenRedirectCorpus(t *testing.T) {
	lines := readCorpus(t)
	const want = "app.example.com"
	for _, allowed := range []string{"https://app.example.com/", "https://app.example.com/app"} {
		p := mustNew(t, []string{allowed}, allowed)
		accepted := 0
		for n, raw := range lines {
			out, err := p.Resolve(raw)
			if err != nil {
				if out != "" || !errors.Is(err, ErrNotAllowed) {
					t.Errorf("allowed %q, line %d Resolve(%q): got %q, %v; want \"\", error wrapping ErrNotAllowed", allowed, n+1, raw, out, err)
				}
				continue
			}
			accepted++
			u, perr := url.Parse(out)
			if perr != nil || u.Hostname() != want || u.User != nil || u.Scheme != "https" || u.Port() != "" {
				t.Errorf("allowed %q, line %d Resolve(%q) = %q: net/url got host %q (user %v, scheme %q, port %q, err %v), want https://%s", allowed, n+1, raw, out, u.Hostname(), u.User, u.Scheme, u.Port(), perr, want)
			}
			if h, ok := whatwgHost(out); !ok || h != want {
				t.Errorf("allowed %q, line %d Resolve(%q) = %q: WHATWG host got %q (ok=%v), want %q", allowed, n+1, raw, out, h, ok, want)
			}
		}
		t.Logf("allowed %q: %d of %d corpus lines accepted (all on %s)", allowed, accepted, len(lines), want)
	}
}

// fuzzAllowed is the policy FuzzResolve checks; fuzzEntries is the same list
// in the form net/url reports it (Hostname without brackets, Port string).
var fuzzAllowed = []string{
	"https://app.example.com/app",
	"http://127.0.0.1:8080/",
	"https://[2001:db8::1]:8443/x/",
}

var fuzzEntries = []struct{ scheme, host, port, path string }{
	{"https", "app.example.com", "", "/app"},
	{"http", "127.0.0.1", "8080", "/"},
	{"https", "2001:db8::1", "8443", "/x/"},
}

func FuzzResolve(f *testing.F) {
	for _, line := range readCorpus(f) {
		f.Add(line)
	}
	for _, s := range []string{
		"", "/app", "/app/x/../y?q=1#f", "/app/%2e%2e/x", "HTTPS://APP.EXAMPLE.COM.:443/app/a%7e?%zz#a#b",
		"http://127.0.0.1:8080/a;b/./c", "https://[2001:DB8:0::1]:8443/x/y", "/app/a\"b<c>?<>#{}",
	} {
		f.Add(s)
	}
	p, err := New(fuzzAllowed, "https://app.example.com/app")
	if err != nil {
		f.Fatalf("New: got %v, want nil", err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := p.Resolve(raw)
		if err != nil {
			if out != "" || !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("Resolve(%q): got %q, %v; want \"\", error wrapping ErrNotAllowed", raw, out, err)
			}
			if len(err.Error()) > 100 {
				t.Fatalf("Resolve(%q): got error of %d chars, want <= 100", raw, len(err.Error()))
			}
			return
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c <= ' ' || c >= 0x7f || c == '\\' {
				t.Fatalf("Resolve(%q) = %q: got byte %#x at %d, want printable ASCII without space or backslash", raw, out, c, i)
			}
		}
		u, perr := url.Parse(out)
		if perr != nil {
			t.Fatalf("Resolve(%q) = %q: url.Parse got error %v, want nil", raw, out, perr)
		}
		if u.User != nil || u.Opaque != "" {
			t.Fatalf("Resolve(%q) = %q: got userinfo %v opaque %q, want none", raw, out, u.User, u.Opaque)
		}
		matched := false
		for _, e := range fuzzEntries {
			if u.Scheme == e.scheme && u.Hostname() == e.host && u.Port() == e.port {
				ep := u.EscapedPath()
				if strings.HasSuffix(e.path, "/") && strings.HasPrefix(ep, e.path) ||
					ep == e.path || strings.HasPrefix(ep, e.path+"/") {
					matched = true
				}
			}
		}
		if !matched {
			t.Fatalf("Resolve(%q) = %q: got scheme %q host %q port %q path %q, want one of %v", raw, out, u.Scheme, u.Hostname(), u.Port(), u.EscapedPath(), fuzzAllowed)
		}
		if h, ok := whatwgHost(out); !ok || h != u.Hostname() {
			t.Fatalf("Resolve(%q) = %q: WHATWG host got %q (ok=%v), want %q", raw, out, h, ok, u.Hostname())
		}
		again, err := p.Resolve(out)
		if err != nil || again != out {
			t.Fatalf("Resolve(Resolve(%q)) = Resolve(%q): got %q, %v; want %q, nil", raw, out, again, err, out)
		}
	})
}

var benchHonest = []string{
	"",
	"/app/dashboard",
	"/app/x?tab=settings&q=a%20b#section-2",
	"https://app.example.com/app/a/../b?x=1",
	"HTTPS://APP.EXAMPLE.COM:443/app/Profile",
	"https://api.example.com:8443/v1/users/42",
	"/app/%7Euser/a%3Fb?q=<x>",
}

var benchHostile = []string{
	"//evil.com",
	"/\\evil.com",
	"https://app.example.com@evil.com/",
	"https://evil.com/app/",
	"/app/%2e%2e/%2e%2e/evil",
	"javascript:alert(1)",
	"/%2f%2fevil.com",
}

func BenchmarkResolve(b *testing.B) {
	p := mustNew(b, mainAllowed, mainDefault)
	for _, bc := range []struct {
		name   string
		inputs []string
	}{
		{"mix", append(append([]string(nil), benchHonest...), benchHostile...)},
		{"honest", benchHonest},
		{"hostile", benchHostile},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				_, _ = p.Resolve(bc.inputs[i%len(bc.inputs)])
			}
		})
	}
}
