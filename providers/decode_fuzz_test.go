package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/: realistic provider
// bodies (PROVIDERS.md, the emulator's answers) and the odd shapes around
// them. go test runs them as ordinary tests; .ci/run also fuzzes each target
// for a bounded time.

// jsonMember is one member of a JSON object, in document order.
type jsonMember struct {
	key string
	raw json.RawMessage
}

// objectMembers returns the members of the JSON object raw, in document
// order (duplicates included), or ok=false when raw is not an object.
func objectMembers(raw []byte) ([]jsonMember, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []jsonMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, jsonMember{key, v})
	}
	return out, true
}

// rawScalar returns the text a JSON scalar stands for, computed from its raw
// bytes independently of the code under test: a string unquoted, a number
// digit for digit as written, true/false. kind is "string", "number", "bool",
// "null" or "composite".
func rawScalar(t *testing.T, raw json.RawMessage) (text, kind string) {
	t.Helper()
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		t.Fatalf("empty raw JSON value")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("unquoting %q: %v", raw, err)
		}
		return s, "string"
	case 't', 'f':
		return string(raw), "bool"
	case 'n':
		return "", "null"
	case '{', '[':
		return "", "composite"
	}
	return string(raw), "number"
}

// foldMatches returns the raw values of the members of obj whose key
// encoding/json would match to a struct field named name (case-insensitive,
// as bytes.EqualFold), in document order.
func foldMatches(obj []jsonMember, name string) []json.RawMessage {
	var out []json.RawMessage
	for _, m := range obj {
		if strings.EqualFold(m.key, name) {
			out = append(out, m.raw)
		}
	}
	return out
}

// walkRaw follows p through raw JSON the way claimPath documents it: object
// members by exact key (the last duplicate wins, as when decoding into a
// map), array elements by a numeric segment (strconv.Atoi, in range).
func walkRaw(raw json.RawMessage, p claimPath) (json.RawMessage, bool) {
	cur := bytes.TrimSpace(raw)
	for _, seg := range p {
		if len(cur) == 0 {
			return nil, false
		}
		switch cur[0] {
		case '{':
			obj, ok := objectMembers(cur)
			if !ok {
				return nil, false
			}
			var next json.RawMessage
			found := false
			for _, m := range obj {
				if m.key == seg {
					next, found = m.raw, true
				}
			}
			if !found {
				return nil, false
			}
			cur = bytes.TrimSpace(next)
		case '[':
			var arr []json.RawMessage
			if err := json.Unmarshal(cur, &arr); err != nil {
				return nil, false
			}
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(arr) {
				return nil, false
			}
			cur = bytes.TrimSpace(arr[i])
		default:
			return nil, false
		}
	}
	return cur, true
}

// FuzzClaimPath feeds a userinfo body and a dotted claim path to the oauth2
// preset's mapping: decodeJSONDoc, parseClaimPath, claimPath.str/truthy and
// oauth2Provider.mapClaims. It must never panic, and whatever it yields must
// be exactly what the JSON says: strings unquoted, numbers digit for digit.
func FuzzClaimPath(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		p, perr := parseClaimPath(path)
		if perr != nil {
			if path != "" && !strings.HasPrefix(path, ".") && !strings.HasSuffix(path, ".") && !strings.Contains(path, "..") {
				t.Fatalf("parseClaimPath(%q): got %v, want a path", path, perr)
			}
		} else if strings.Join(p, ".") != path || len(p) == 0 {
			t.Fatalf("parseClaimPath(%q) = %q: segments do not rejoin to the path", path, []string(p))
		}

		doc, err := decodeJSONDoc(body)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("decodeJSONDoc(%q): accepted a body that is not one valid JSON value", body)
		}
		if perr != nil {
			return
		}

		got, ok := p.str(doc)
		if truthy := p.truthy(doc); truthy != (ok && got == "true") {
			t.Fatalf("path %q in %q: truthy = %v but str = %q, %v", path, body, truthy, got, ok)
		}

		// The independent answer, read from the raw bytes. A trailing
		// closer (the known bug above) is not part of the document.
		var whole any
		dec := json.NewDecoder(bytes.NewReader(body))
		var first json.RawMessage
		if err := dec.Decode(&first); err != nil {
			t.Fatalf("re-decoding %q: %v", body, err)
		}
		raw, found := walkRaw(first, p)
		wantText, kind := "", "missing"
		if found {
			wantText, kind = rawScalar(t, raw)
		}
		wantOK := kind == "string" || kind == "number" || kind == "bool"
		if ok != wantOK || (ok && got != wantText) {
			t.Fatalf("path %q in %q: str = %q, %v; the JSON has %s %q there", path, body, got, ok, kind, wantText)
		}
		if kind == "number" {
			// Re-decode with UseNumber and compare: the number must come out
			// as its literal, never through a float.
			d2 := json.NewDecoder(bytes.NewReader(first))
			d2.UseNumber()
			if err := d2.Decode(&whole); err != nil {
				t.Fatalf("UseNumber re-decode of %q: %v", first, err)
			}
			v, _ := p.lookup(whole)
			if n, isNum := v.(json.Number); !isNum || n.String() != got {
				t.Fatalf("path %q in %q: got %q, UseNumber re-decode has %#v", path, body, got, v)
			}
		}

		// The same path as the oauth2 preset's subject: a non-empty string
		// or number is the subject verbatim; anything else is refused.
		prov := &oauth2Provider{base: &base{info: Info{Name: "fuzz"}}, subject: p, email: p, emailVerified: p, name: p, picture: p}
		id, merr := prov.mapClaims(doc)
		wantSub := (kind == "string" || kind == "number") && wantText != ""
		if merr != nil {
			if wantSub {
				t.Fatalf("mapClaims, subject %q in %q: got %v, want subject %q", path, body, merr, wantText)
			}
			if ErrorCode(merr) != CodeInvalidResponse {
				t.Fatalf("mapClaims: got code %q, want %q", ErrorCode(merr), CodeInvalidResponse)
			}
			return
		}
		if !wantSub || id.Subject != wantText {
			t.Fatalf("mapClaims, subject %q in %q: got subject %q; the JSON has %s %q there", path, body, id.Subject, kind, wantText)
		}
		if id.Provider != "fuzz" || id.Email != got || id.Name != got || id.Picture != got {
			t.Fatalf("mapClaims, all paths %q in %q: got %+v, want each claim %q", path, body, id, got)
		}
		if id.EmailVerified != (got == "true") {
			t.Fatalf("mapClaims, email_verified %q in %q: got %v with email %q", path, body, id.EmailVerified, id.Email)
		}
	})
}

// FuzzKakaoUserinfo feeds arbitrary bytes to the /v2/user/me decoder. It must
// never panic; an accepted body has a top-level id (matched as encoding/json
// matches field names) whose decimal digits are the subject, verbatim.
func FuzzKakaoUserinfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := decodeKakaoUserinfo(body)
		if err != nil {
			checkDecodeError(t, "decodeKakaoUserinfo", body, err)
			if u != (kakaoUser{}) {
				t.Fatalf("decodeKakaoUserinfo(%q): got %+v with error %v, want the zero value", body, u, err)
			}
			return
		}
		if !isDecimal(u.Subject) {
			t.Fatalf("decodeKakaoUserinfo(%q): accepted subject %q, want ASCII decimal digits", body, u.Subject)
		}
		if !json.Valid(body) {
			t.Fatalf("decodeKakaoUserinfo(%q): accepted invalid JSON", body)
		}
		obj, ok := objectMembers(body)
		if !ok {
			t.Fatalf("decodeKakaoUserinfo(%q): accepted a body that is not a JSON object", body)
		}
		// The subject is the last id that is not null (encoding/json keeps
		// the previous value on null), exactly as written.
		var last json.RawMessage
		for _, raw := range foldMatches(obj, "id") {
			if _, kind := rawScalar(t, raw); kind != "null" {
				last = raw
			}
		}
		if last == nil {
			t.Fatalf("decodeKakaoUserinfo(%q): accepted subject %q, but the body has no id", body, u.Subject)
		}
		if text, kind := rawScalar(t, last); text != u.Subject || (kind != "number" && kind != "string") {
			t.Fatalf("decodeKakaoUserinfo(%q): subject %q, but the id is %s %q", body, u.Subject, kind, text)
		}
		if u.EmailVerified && u.Email == "" {
			t.Fatalf("decodeKakaoUserinfo(%q): email verified without an email", body)
		}
	})
}

// FuzzNaverUserinfo feeds arbitrary bytes to the /v1/nid/me decoder. It must
// never panic; an accepted body has resultcode "00" and a non-empty
// response.id that is the subject, verbatim.
func FuzzNaverUserinfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := decodeNaverUserinfo(body)
		if err != nil {
			checkDecodeError(t, "decodeNaverUserinfo", body, err)
			if u != (naverUser{}) {
				t.Fatalf("decodeNaverUserinfo(%q): got %+v with error %v, want the zero value", body, u, err)
			}
			return
		}
		if u.Subject == "" {
			t.Fatalf("decodeNaverUserinfo(%q): accepted an empty subject", body)
		}
		if !json.Valid(body) {
			t.Fatalf("decodeNaverUserinfo(%q): accepted invalid JSON", body)
		}
		obj, ok := objectMembers(body)
		if !ok {
			t.Fatalf("decodeNaverUserinfo(%q): accepted a body that is not a JSON object", body)
		}
		// resultcode: the last non-null one must be the string "00".
		var rc json.RawMessage
		for _, raw := range foldMatches(obj, "resultcode") {
			if _, kind := rawScalar(t, raw); kind != "null" {
				rc = raw
			}
		}
		if rc == nil {
			t.Fatalf("decodeNaverUserinfo(%q): accepted without a resultcode", body)
		}
		if text, kind := rawScalar(t, rc); kind != "string" || text != "00" {
			t.Fatalf("decodeNaverUserinfo(%q): accepted with resultcode %s %q, want string \"00\"", body, kind, text)
		}
		// The subject is, verbatim, some response.id of the body (repeated
		// "response" members merge into one struct, so any may hold it).
		found := false
		for _, resp := range foldMatches(obj, "response") {
			members, ok := objectMembers(resp)
			if !ok {
				continue
			}
			for _, raw := range foldMatches(members, "id") {
				if text, kind := rawScalar(t, raw); (kind == "string" || kind == "number") && text == u.Subject {
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("decodeNaverUserinfo(%q): subject %q is no response.id of the body", body, u.Subject)
		}
	})
}

// checkDecodeError checks a refused userinfo body: a *Error with
// CodeInvalidResponse and a short "userinfo: …" cause (the decoders put
// nothing from the body there but a code-like resultcode).
func checkDecodeError(t *testing.T, fn string, body []byte, err error) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeInvalidResponse || pe.Cause == nil {
		t.Fatalf("%s(%q): got error %#v, want *Error with code %q and a cause", fn, body, err, CodeInvalidResponse)
	}
	if msg := pe.Cause.Error(); len(msg) > 100 || !strings.HasPrefix(msg, "userinfo: ") {
		t.Fatalf("%s(%q): cause %q, want a short \"userinfo: …\" message", fn, body, msg)
	}
}

// fuzzCode is the authorization code the token fuzz target trades; Kakao
// echoes it in error_description, and it must never reach a cause.
const fuzzCode = "fuzzSecretAuthCode-7Hq2"

var fuzzContentTypes = []string{
	"application/json;charset=UTF-8",
	"application/x-www-form-urlencoded",
	"text/plain",
	"text/html; charset=utf-8",
	"",
}

// fuzzTokenTransport answers every request with one canned response.
type fuzzTokenTransport struct {
	status      int
	contentType string
	body        []byte
}

func (rt *fuzzTokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	h := http.Header{}
	if rt.contentType != "" {
		h.Set("Content-Type", rt.contentType)
	}
	return &http.Response{
		StatusCode:    rt.status,
		Status:        strconv.Itoa(rt.status) + " " + http.StatusText(rt.status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(rt.body)),
		ContentLength: int64(len(rt.body)),
		Request:       req,
	}, nil
}

// tokenCauseRE is every shape a token-endpoint cause may take: fixed text,
// an HTTP status and code-like words.
var tokenCauseRE = regexp.MustCompile(`^token endpoint: (?:unusable response|(?:HTTP (\d{3}) )?(no error code|[A-Za-z0-9_.-]{1,64})(?: \(([A-Za-z0-9_.-]{1,64})\))?)$`)

// FuzzTokenError sends a canned token-endpoint answer (status, content type,
// body) through httpx.exchange, i.e. x/oauth2's parsing and tokenError. It
// must never panic, failures must be *Error with a token-endpoint code, and
// the cause must never carry error_description (Kakao echoes the code
// there), the authorization code, or any 8-byte piece of either: only fixed
// text, the status and the code-like error / error_code values.
func FuzzTokenError(f *testing.F) {
	f.Fuzz(func(t *testing.T, status uint16, ctype uint8, opts uint8, body []byte) {
		st := int(status)
		if st < 100 || st > 599 {
			st = 100 + st%500
		}
		rt := &fuzzTokenTransport{status: st, contentType: fuzzContentTypes[int(ctype)%len(fuzzContentTypes)], body: body}
		h := &httpx{
			client:  newClient(&http.Client{Transport: rt}),
			timeout: 10 * time.Second,
			now:     time.Now,
			log:     slog.New(slog.DiscardHandler),
		}
		cfg := &oauth2.Config{
			ClientID:     "fuzz-client",
			ClientSecret: "fuzz-secret",
			RedirectURL:  "https://broker.example/auth/callback/kakao",
			Endpoint:     oauth2.Endpoint{AuthURL: "https://idp.example/authorize", TokenURL: "https://idp.example/token", AuthStyle: oauth2.AuthStyleInParams},
		}
		eo := tokenErrorOpts{okInvalidRequestIsGrant: opts&1 != 0, unauthorizedClientIsGrant: opts&2 != 0}
		tok, err := h.exchange(context.Background(), cfg, fuzzCode, eo)

		// The same answer read by x/oauth2 alone: what the body said.
		_, rawErr := cfg.Exchange(context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rt}), fuzzCode)
		if err == nil {
			if tok == nil || tok.AccessToken == "" || rawErr != nil {
				t.Fatalf("exchange (HTTP %d, %q): got token %+v and no error (x/oauth2 alone: %v), want an access token", st, body, tok, rawErr)
			}
			return
		}
		var pe *Error
		if !errors.As(err, &pe) || pe.Cause == nil {
			t.Fatalf("exchange: got %#v, want *Error with a cause", err)
		}
		var leaked *oauth2.RetrieveError
		if errors.As(err, &leaked) {
			t.Fatalf("exchange: the *oauth2.RetrieveError (raw body) is in the error chain: %v", err)
		}
		cause := pe.Cause.Error()
		m := tokenCauseRE.FindStringSubmatch(cause)
		if m == nil {
			t.Fatalf("exchange (HTTP %d, %q): cause %q has an unexpected shape", st, body, cause)
		}

		var re *oauth2.RetrieveError
		if !errors.As(rawErr, &re) {
			// Not an error answer: an unparseable success or no access_token.
			if cause != "token endpoint: unusable response" || pe.Code != CodeProviderError {
				t.Fatalf("exchange (HTTP %d, %q): got %v, want %s: token endpoint: unusable response", st, body, err, CodeProviderError)
			}
			return
		}
		var extra struct {
			ErrorCode string `json:"error_code"`
		}
		_ = json.Unmarshal(re.Body, &extra)
		wantCode := wireCode(re.ErrorCode)
		if wantCode == "" {
			wantCode = "no error code"
		}
		if m[2] != wantCode || m[3] != wireCode(extra.ErrorCode) {
			t.Fatalf("exchange (HTTP %d, %q): cause %q, want code %q and error_code %q", st, body, cause, wantCode, wireCode(extra.ErrorCode))
		}
		if (st == http.StatusOK) != (m[1] == "") || (m[1] != "" && m[1] != strconv.Itoa(st)) {
			t.Fatalf("exchange (HTTP %d): cause %q, want the status except on HTTP 200", st, cause)
		}
		switch {
		case pe.Code == CodeInvalidGrant:
			if !(m[2] == "invalid_grant" || m[3] == "KOE320" ||
				eo.okInvalidRequestIsGrant && st == http.StatusOK && m[2] == "invalid_request" ||
				eo.unauthorizedClientIsGrant && st == http.StatusBadRequest && m[2] == "unauthorized_client") {
				t.Fatalf("exchange (HTTP %d, %q, %+v): %v is not a reused or unknown code", st, body, eo, err)
			}
		case pe.Code != CodeProviderError:
			t.Fatalf("exchange: got code %q, want %q or %q", pe.Code, CodeInvalidGrant, CodeProviderError)
		case m[2] == "invalid_grant":
			t.Fatalf("exchange: error=invalid_grant mapped to %q", pe.Code)
		}

		// Take out what the cause may repeat; no 8-byte window of
		// error_description or of the code we sent may be in what is left.
		frags := []string{cause}
		allowedParts := []string{"token endpoint: ", "HTTP " + m[1] + " ", m[2], m[3]}
		// Longest first, so that a short code ("t") does not cut a longer
		// one ("0tode-7Hq2") into pieces that look like leaks.
		sort.Slice(allowedParts, func(i, j int) bool { return len(allowedParts[i]) > len(allowedParts[j]) })
		for _, allowed := range allowedParts {
			if allowed == "" {
				continue
			}
			var next []string
			for _, fr := range frags {
				next = append(next, strings.Split(fr, allowed)...)
			}
			frags = next
		}
		for _, secret := range []string{re.ErrorDescription, fuzzCode} {
			for i := 0; i+8 <= len(secret); i++ {
				for _, fr := range frags {
					if w := secret[i : i+8]; strings.Contains(fr, w) {
						t.Fatalf("exchange (HTTP %d, %q): cause %q leaks %q of %q", st, body, cause, w, secret)
					}
				}
			}
		}
	})
}
