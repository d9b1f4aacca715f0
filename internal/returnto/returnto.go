// Package returnto validates the return_to parameter of the broker's login
// endpoint so that it can only ever redirect to a configured, allowed place.
//
// # Model
//
// The package reasons about URLs the way a browser does (the WHATWG URL
// standard), not the way net/url does, and where the two could disagree it
// refuses instead of guessing. A candidate is accepted only if it is one of:
//
//   - an absolute URL of the exact form scheme://host[:port][/path][?query][#fragment]
//     with scheme http or https (any case), exactly two slashes, no userinfo,
//     and a host that is a lowercase-able LDH DNS name, a dotted-quad IPv4
//     address or a bracketed IPv6 literal;
//   - a relative path: exactly "/" or "/" followed by a character other than
//     "/". It is resolved against the origin (scheme, host, port) of the
//     default URL.
//
// # Refusal rules (checked on the raw input, before any decoding)
//
//   - longer than 4096 bytes, before or after re-escaping;
//   - any ASCII control character (0x00-0x1F, 0x7F), space, backslash or
//     byte >= 0x80 (non-ASCII) anywhere. Browsers strip tab/CR/LF, trim
//     C0/space and treat "\" as "/", and Unicode look-alikes ("／", "。",
//     "〱") are mapped by IDNA, so none of these is ever interpreted;
//   - no scheme and not starting with "/" ("evil.com", "?x", "#x", "@evil.com");
//   - a scheme other than http/https (javascript:, data:, ftp:, ...);
//   - anything other than exactly "//" after "scheme:" ("https:evil.com",
//     "https:/evil.com", "https:///evil.com");
//   - a relative reference starting with "//" (protocol-relative);
//   - "@" in the authority (userinfo: "https://good@evil.com"), "%" in the
//     authority (browsers percent-decode hosts), an empty host or port, a port
//     that is not 1-65535 in decimal;
//   - a host that is neither an LDH name (labels of 1-63 [a-z0-9-] characters,
//     not starting or ending with "-", 253 characters at most) nor a valid IP
//     literal. A host whose last label is numeric ("1.2.3.4", "3627734734",
//     "0x7f.1", "evil.0x") is what WHATWG parses as IPv4; it must then be a
//     canonical dotted-quad, anything else (octal, hex, short forms) is refused.
//     IPv6 zones are refused.
//
// # Path handling (decode-then-check)
//
// The path is split on literal "/" only. Each segment is percent-decoded for
// checking and re-encoded canonically for output:
//
//   - a malformed escape ("%zz", "%4") is refused;
//   - an escape decoding to "/", "\", a control character or a byte >= 0x80 is
//     refused ("%2f", "%5c", "%09", "%E3%80%82");
//   - a decoded segment that still contains a valid escape (double encoding,
//     "%252f") is refused;
//   - an empty segment ("//" inside the path) is refused: such paths become
//     protocol-relative URLs if the application ever reuses them;
//   - "." and ".." segments, also spelled "%2e", ".%2E", ... (as WHATWG does),
//     are removed per RFC 3986 5.2.4; ".." above the root is refused, and so
//     are "." / ".." carrying ";" parameters ("..;/", a Tomcat-ism).
//
// Escapes of unreserved characters are decoded, other escapes are kept with
// uppercase hex, and printable characters that are not valid in a path
// (`"<>[]^{|}` and backquote) are percent-encoded.
//
// # Matching and output
//
// Scheme and host are lowercased, a single trailing dot on a host is dropped,
// and a default port (80 for http, 443 for https) is removed. The candidate
// matches an allowed entry when scheme, host and port are equal and the path
// is under the entry's path: an entry path ending in "/" is a prefix ("/app/"
// allows "/app/" and "/app/x"), otherwise it must be equal or followed by "/"
// ("/app" allows "/app", "/app/" and "/app/x" but not "/apple").
//
// The returned string is serialised from the validated parts: scheme://host
// [:port] + normalised path + "?" query + "#" fragment. In the query and
// fragment, valid escapes are kept (uppercase hex), unreserved characters,
// sub-delimiters, ":", "@", "/" and "?" are kept, and everything else
// (including "%" not starting a valid escape and "#" inside the fragment) is
// percent-encoded. An empty query or fragment is dropped. The result is pure
// printable ASCII, parses identically with net/url and in browsers, and
// Resolve(result) == result.
package returnto

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrNotAllowed is wrapped by every refusal returned from Resolve.
var ErrNotAllowed = errors.New("return_to not allowed")

// maxLen bounds the accepted input length in bytes.
const maxLen = 4096

// refusal is a short, input-free reason. It unwraps to ErrNotAllowed.
type refusal struct{ reason string }

func (r *refusal) Error() string { return ErrNotAllowed.Error() + ": " + r.reason }
func (r *refusal) Unwrap() error { return ErrNotAllowed }

// Refusal reasons. They never contain any part of the input.
var (
	errTooLong         = &refusal{"longer than 4096 bytes (input or escaped output)"}
	errForbiddenChar   = &refusal{"contains a control character, space, backslash or non-ASCII character"}
	errNotURL          = &refusal{"neither an absolute http(s) URL nor a path starting with a single /"}
	errScheme          = &refusal{"scheme is not http or https"}
	errSlashes         = &refusal{"scheme must be followed by exactly two slashes and a host"}
	errProtoRelative   = &refusal{"relative path must not start with //"}
	errRelative        = &refusal{"relative reference not permitted here"}
	errUserinfo        = &refusal{"userinfo (@) in authority"}
	errHostPercent     = &refusal{"percent-encoding in authority"}
	errEmptyHost       = &refusal{"empty host"}
	errHost            = &refusal{"invalid host"}
	errIPv4            = &refusal{"numeric host is not a canonical dotted-quad IPv4 address"}
	errIPv6            = &refusal{"invalid IPv6 literal"}
	errPort            = &refusal{"invalid port"}
	errPercent         = &refusal{"malformed percent-encoding in path"}
	errEncodedSep      = &refusal{"percent-encoded separator, control or non-ASCII character in path"}
	errDoubleEncoded   = &refusal{"double percent-encoding in path"}
	errEmptySegment    = &refusal{"empty path segment (//)"}
	errAboveRoot       = &refusal{"dot segments climb above the root"}
	errDotParams       = &refusal{"dot segment with parameters"}
	errOriginNotAllow  = &refusal{"origin is not allowed"}
	errPathNotAllowed  = &refusal{"path is not under an allowed path"}
	errEntryHasQuery   = &refusal{"allowed entry must not have a query or fragment"}
	errDefaultRelative = &refusal{"default must be an absolute URL"}
)

// target is a validated, normalised URL.
type target struct {
	scheme string // "http" or "https"
	host   string // lowercase LDH name, dotted-quad, or "[ipv6]"
	port   int    // 0 means the scheme's default port
	path   string // normalised, escaped, starts with "/"
	query  string // escaped, without "?"; "" means none
	frag   string // escaped, without "#"; "" means none
}

func (t *target) String() string {
	var b strings.Builder
	n := len(t.scheme) + 3 + len(t.host) + 6 + len(t.path) + len(t.query) + 1 + len(t.frag) + 1
	b.Grow(n)
	b.WriteString(t.scheme)
	b.WriteString("://")
	b.WriteString(t.host)
	if t.port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(t.port))
	}
	b.WriteString(t.path)
	if t.query != "" {
		b.WriteByte('?')
		b.WriteString(t.query)
	}
	if t.frag != "" {
		b.WriteByte('#')
		b.WriteString(t.frag)
	}
	return b.String()
}

// entry is one parsed redirects.allowed value.
type entry struct {
	scheme, host string
	port         int
	path         string
}

// Policy holds the parsed redirect configuration. It is safe for concurrent use.
type Policy struct {
	allowed []entry
	def     string
	origin  target // scheme, host, port of the default
}

// New parses the allowed entries and the default; a malformed entry or a
// default that is not itself allowed is an error naming the entry.
func New(allowed []string, def string) (*Policy, error) {
	if len(allowed) == 0 {
		return nil, errors.New("returnto: redirects.allowed is empty")
	}
	p := &Policy{allowed: make([]entry, 0, len(allowed))}
	for _, a := range allowed {
		t, r := parse(a, nil)
		if r == nil && (t.query != "" || t.frag != "" || strings.ContainsAny(a, "?#")) {
			r = errEntryHasQuery
		}
		if r != nil {
			return nil, fmt.Errorf("returnto: redirects.allowed entry %q: %s", a, r.reason)
		}
		p.allowed = append(p.allowed, entry{scheme: t.scheme, host: t.host, port: t.port, path: t.path})
	}
	if def == "" {
		return nil, errors.New("returnto: redirects.default is empty")
	}
	t, r := parse(def, nil)
	if r == errRelative {
		r = errDefaultRelative
	}
	if r == nil {
		r = p.match(&t)
	}
	if r == nil && len(t.String()) > maxLen {
		r = errTooLong
	}
	if r != nil {
		return nil, fmt.Errorf("returnto: redirects.default %q: %s", def, r.reason)
	}
	p.def = t.String()
	p.origin = target{scheme: t.scheme, host: t.host, port: t.port}
	return p, nil
}

// Resolve validates raw. "" returns the default. On refusal it returns an
// error wrapping ErrNotAllowed with a short reason (no echo of the raw input
// beyond 100 chars).
func (p *Policy) Resolve(raw string) (string, error) {
	if raw == "" {
		return p.def, nil
	}
	t, r := parse(raw, &p.origin)
	if r == nil {
		r = p.match(&t)
	}
	if r != nil {
		return "", r
	}
	out := t.String()
	if len(out) > maxLen {
		// Escaping can triple the query and fragment; capping the output too
		// keeps Resolve(out) == out.
		return "", errTooLong
	}
	return out, nil
}

// Default returns the normalised default URL.
func (p *Policy) Default() string { return p.def }

func (p *Policy) match(t *target) *refusal {
	sameOrigin := false
	for i := range p.allowed {
		e := &p.allowed[i]
		if e.scheme != t.scheme || e.host != t.host || e.port != t.port {
			continue
		}
		sameOrigin = true
		if pathUnder(t.path, e.path) {
			return nil
		}
	}
	if sameOrigin {
		return errPathNotAllowed
	}
	return errOriginNotAllow
}

// pathUnder reports whether normalised path p is under entry path ep.
func pathUnder(p, ep string) bool {
	if strings.HasSuffix(ep, "/") {
		return strings.HasPrefix(p, ep)
	}
	return p == ep || (len(p) > len(ep) && p[len(ep)] == '/' && strings.HasPrefix(p, ep))
}

// parse validates and normalises raw. With origin == nil only absolute URLs
// are accepted; otherwise a relative path takes origin's scheme, host, port.
func parse(raw string, origin *target) (target, *refusal) {
	var t target
	if len(raw) > maxLen {
		return t, errTooLong
	}
	if raw == "" {
		return t, errNotURL
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return t, errForbiddenChar
		}
	}

	var rest string
	if raw[0] == '/' {
		if origin == nil {
			return t, errRelative
		}
		if len(raw) > 1 && raw[1] == '/' {
			return t, errProtoRelative
		}
		t.scheme, t.host, t.port = origin.scheme, origin.host, origin.port
		rest = raw
	} else {
		i := schemeEnd(raw)
		if i <= 0 {
			return t, errNotURL
		}
		switch {
		case strings.EqualFold(raw[:i], "https"):
			t.scheme = "https"
		case strings.EqualFold(raw[:i], "http"):
			t.scheme = "http"
		default:
			return t, errScheme
		}
		rest = raw[i+1:]
		if len(rest) < 3 || rest[0] != '/' || rest[1] != '/' || rest[2] == '/' {
			return t, errSlashes
		}
		rest = rest[2:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		var r *refusal
		t.host, t.port, r = parseAuthority(rest[:end], t.scheme)
		if r != nil {
			return t, r
		}
		rest = rest[end:]
	}

	// rest is [/path][?query][#fragment]
	path, frag := rest, ""
	hasFrag := false
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		path, frag, hasFrag = rest[:i], rest[i+1:], true
	}
	query := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if path == "" {
		path = "/"
	}
	np, r := normalisePath(path)
	if r != nil {
		return t, r
	}
	t.path = np
	t.query = escapeQuery(query)
	if hasFrag {
		t.frag = escapeQuery(frag)
	}
	return t, nil
}

// schemeEnd returns the index of the ":" ending a WHATWG scheme
// (ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")), or -1.
func schemeEnd(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return i
		default:
			return -1
		}
	}
	return -1
}

// parseAuthority validates host[:port] and returns the normalised host and
// the port (0 when absent or equal to the scheme's default).
func parseAuthority(auth, scheme string) (string, int, *refusal) {
	if auth == "" {
		return "", 0, errEmptyHost
	}
	if strings.IndexByte(auth, '@') >= 0 {
		return "", 0, errUserinfo
	}
	if strings.IndexByte(auth, '%') >= 0 {
		return "", 0, errHostPercent
	}
	var host, portStr string
	hasPort := false
	if auth[0] == '[' {
		j := strings.IndexByte(auth, ']')
		if j < 0 {
			return "", 0, errIPv6
		}
		addr, err := netip.ParseAddr(auth[1:j])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", 0, errIPv6
		}
		host = "[" + addr.String() + "]"
		switch tail := auth[j+1:]; {
		case tail == "":
		case tail[0] == ':':
			portStr, hasPort = tail[1:], true
		default:
			return "", 0, errHost
		}
	} else {
		h := auth
		if k := strings.LastIndexByte(auth, ':'); k >= 0 {
			h, portStr, hasPort = auth[:k], auth[k+1:], true
		}
		var r *refusal
		host, r = normaliseHost(h)
		if r != nil {
			return "", 0, r
		}
	}
	port := 0
	if hasPort {
		if portStr == "" || len(portStr) > 5 {
			return "", 0, errPort
		}
		for i := 0; i < len(portStr); i++ {
			c := portStr[i]
			if c < '0' || c > '9' {
				return "", 0, errPort
			}
			port = port*10 + int(c-'0')
		}
		if port == 0 || port > 65535 {
			return "", 0, errPort
		}
		if (scheme == "https" && port == 443) || (scheme == "http" && port == 80) {
			port = 0
		}
	}
	return host, port, nil
}

// normaliseHost lowercases h, drops one trailing dot and checks it is an LDH
// DNS name or, when its last label is numeric, a canonical IPv4 address.
func normaliseHost(h string) (string, *refusal) {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", errEmptyHost
	}
	if len(h) > 253 {
		return "", errHost
	}
	h = strings.ToLower(h)
	labelStart := 0
	for i := 0; i <= len(h); i++ {
		if i < len(h) && h[i] != '.' {
			c := h[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", errHost
			}
			continue
		}
		label := h[labelStart:i]
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", errHost
		}
		labelStart = i + 1
	}
	if last := h[strings.LastIndexByte(h, '.')+1:]; endsInNumber(last) {
		addr, err := netip.ParseAddr(h)
		if err != nil || !addr.Is4() || addr.String() != h {
			return "", errIPv4
		}
	}
	return h, nil
}

// endsInNumber reports whether label makes WHATWG parse the host as IPv4:
// all decimal digits, or "0x" followed by hex digits (possibly none).
func endsInNumber(label string) bool {
	if strings.HasPrefix(label, "0x") {
		for i := 2; i < len(label); i++ {
			if !isHex(label[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(label); i++ {
		if label[i] < '0' || label[i] > '9' {
			return false
		}
	}
	return len(label) > 0
}

// normalisePath checks and normalises a path starting with "/" (see the
// package documentation).
func normalisePath(path string) (string, *refusal) {
	if path == "/" {
		return "/", nil
	}
	var outBuf [256]byte
	out := outBuf[:0]
	var stackBuf [16]int
	stack := stackBuf[:0] // len(out) before each kept segment
	var decBuf [64]byte
	trailingSlash := false
	rest := path[1:]
	for {
		seg := rest
		last := true
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest, last = rest[:i], rest[i+1:], false
		}
		if seg == "" {
			if !last {
				return "", errEmptySegment
			}
			trailingSlash = true
			break
		}
		start := len(out)
		out = append(out, '/')
		dec := decBuf[:0]
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if c == '%' {
				if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
					return "", errPercent
				}
				v := unhex(seg[i+1])<<4 | unhex(seg[i+2])
				i += 2
				if v == '/' || v == '\\' || v < 0x20 || v >= 0x7f {
					return "", errEncodedSep
				}
				dec = append(dec, v)
				if isUnreserved(v) {
					out = append(out, v)
				} else {
					out = append(out, '%', upperHex[v>>4], upperHex[v&15])
				}
				continue
			}
			dec = append(dec, c)
			if isPathLiteral(c) {
				out = append(out, c)
			} else {
				out = append(out, '%', upperHex[c>>4], upperHex[c&15])
			}
		}
		if hasValidEscape(dec) {
			return "", errDoubleEncoded
		}
		base := dec
		if i := indexByte(dec, ';'); i >= 0 {
			base = dec[:i]
		}
		isDot := string(base) == "." || string(base) == ".."
		if isDot && len(base) != len(dec) {
			return "", errDotParams
		}
		switch {
		case string(dec) == ".":
			out = out[:start]
			trailingSlash = last
		case string(dec) == "..":
			out = out[:start]
			if len(stack) == 0 {
				return "", errAboveRoot
			}
			out = out[:stack[len(stack)-1]]
			stack = stack[:len(stack)-1]
			trailingSlash = last
		default:
			stack = append(stack, start)
			trailingSlash = false
		}
		if last {
			break
		}
	}
	if len(out) == 0 || trailingSlash {
		out = append(out, '/')
	}
	if string(out) == path {
		return path, nil // already canonical: no copy
	}
	return string(out), nil
}

// escapeQuery canonicalises a query or fragment: valid escapes are kept with
// uppercase hex, safe characters are kept, everything else is escaped.
func escapeQuery(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 < len(s) && isUpperHexDigit(s[i+1]) && isUpperHexDigit(s[i+2]) {
				i += 2
				continue
			}
			clean = false
			break
		}
		if !isQueryLiteral(c) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	out := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			out = append(out, '%', upperHex[unhex(s[i+1])], upperHex[unhex(s[i+2])])
			i += 2
		case c != '%' && isQueryLiteral(c):
			out = append(out, c)
		default:
			out = append(out, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return string(out)
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isUpperHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// isUnreserved: RFC 3986 unreserved characters.
func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isSubDelim: RFC 3986 sub-delims.
func isSubDelim(c byte) bool {
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

// isPathLiteral: pchar minus "%" (RFC 3986).
func isPathLiteral(c byte) bool {
	return isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@'
}

// isQueryLiteral: query/fragment characters minus "%" (RFC 3986).
func isQueryLiteral(c byte) bool {
	return isPathLiteral(c) || c == '/' || c == '?'
}

func hasValidEscape(b []byte) bool {
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' && isHex(b[i+1]) && isHex(b[i+2]) {
			return true
		}
	}
	return false
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
