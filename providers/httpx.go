package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// maxBody caps every provider response body. A bigger body is refused
// (CodeProviderError) without being read past the cap.
const maxBody = 1 << 20

// errBodyTooLarge is reported by the capped body once a response is known
// to exceed maxBody.
var errBodyTooLarge = errors.New("response body over 1 MiB")

// httpx is the HTTP side shared by every provider of a registry: one client
// (no redirects, capped bodies, Accept: application/json), the per-call
// timeout, the clock and the logger.
type httpx struct {
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
}

// newClient derives the client used for provider calls from base (or a fresh
// one): redirects are never followed, no cookie jar is kept, and every
// response body goes through the size cap. The per-call timeout is the call
// context's deadline alone: a second timer (http.Client.Timeout) could end a
// slow body first, and x/oauth2 flattens that error so that it could not be
// told from a bad body.
func newClient(base *http.Client) *http.Client {
	c := &http.Client{}
	if base != nil {
		c.Transport = base.Transport
		c.Timeout = base.Timeout
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = &capTransport{next: next}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// callState records, per provider call, what the transport saw. x/oauth2
// flattens transport and read errors with %v, so the size cap cannot be
// recognised from the error chain alone.
type callState struct {
	tooLarge atomic.Bool
}

type callStateKey struct{}

func stateFrom(ctx context.Context) *callState {
	st, _ := ctx.Value(callStateKey{}).(*callState)
	return st
}

// call starts one provider call: a context bounded by the timeout, carrying
// the call state and (for x/oauth2) the client.
func (h *httpx) call(ctx context.Context) (context.Context, *callState, context.CancelFunc) {
	st := &callState{}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	ctx = context.WithValue(ctx, callStateKey{}, st)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, h.client)
	return ctx, st, cancel
}

// capTransport sets Accept: application/json and caps response bodies.
type capTransport struct{ next http.RoundTripper }

func (t *capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Accept") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Accept", "application/json")
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	st := stateFrom(req.Context())
	if resp.ContentLength > maxBody {
		resp.Body.Close()
		if st != nil {
			st.tooLarge.Store(true)
		}
		return nil, errBodyTooLarge
	}
	resp.Body = &cappedBody{rc: resp.Body, remaining: maxBody, st: st}
	return resp, nil
}

// cappedBody delivers at most maxBody bytes and fails with errBodyTooLarge as
// soon as one more byte is available. It peeks one byte when the cap is
// reached, because readers such as x/oauth2's io.LimitReader(body, 1<<20)
// never ask for more than the cap themselves.
type cappedBody struct {
	rc        io.ReadCloser
	remaining int64
	st        *callState
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.remaining <= 0 {
		return 0, b.probe()
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.rc.Read(p)
	b.remaining -= int64(n)
	if b.remaining == 0 && err == nil {
		err = b.probe()
	}
	return n, err
}

// probe reports io.EOF when the body ends exactly at the cap.
func (b *cappedBody) probe() error {
	var one [1]byte
	for {
		n, err := b.rc.Read(one[:])
		if n > 0 {
			if b.st != nil {
				b.st.tooLarge.Store(true)
			}
			return errBodyTooLarge
		}
		if err != nil {
			return err
		}
	}
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// transportError maps a failed round trip or body read to a provider error.
// stage names the endpoint ("token endpoint", "userinfo", …).
func transportError(ctx context.Context, st *callState, stage string, err error) *Error {
	if (st != nil && st.tooLarge.Load()) || errors.Is(err, errBodyTooLarge) {
		return &Error{Code: CodeProviderError, Cause: fmt.Errorf("%s: %w", stage, errBodyTooLarge)}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Code: CodeProviderTimeout, Cause: fmt.Errorf("%s: no answer in time: %w", stage, context.DeadlineExceeded)}
	}
	if errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled) {
		return &Error{Code: CodeProviderError, Cause: fmt.Errorf("%s: %w", stage, context.Canceled)}
	}
	// *url.Error repeats the URL; keep only the network-level reason.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &Error{Code: CodeProviderError, Cause: fmt.Errorf("%s: request failed: %w", stage, err)}
}

// wireCode keeps provider error codes only when they look like codes, so a
// provider cannot smuggle free text (or the echoed code) into our logs.
var wireCodeRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func wireCode(s string) string {
	if wireCodeRE.MatchString(s) {
		return s
	}
	if s == "" {
		return ""
	}
	return "unrecognised"
}

// tokenErrorOpts tunes how token endpoint errors are read.
type tokenErrorOpts struct {
	// okInvalidRequestIsGrant: Naver answers a reused or unknown code with
	// HTTP 200 and error=invalid_request.
	okInvalidRequestIsGrant bool
	// unauthorizedClientIsGrant: Gitea (and servers built like it) answer a
	// reused or unknown code, and a failed PKCE check, with HTTP 400 and
	// error=unauthorized_client.
	unauthorizedClientIsGrant bool
}

// exchange trades the code at the token endpoint through x/oauth2 and maps
// every failure to *Error.
func (h *httpx) exchange(ctx context.Context, cfg *oauth2.Config, code string, eo tokenErrorOpts, opts ...oauth2.AuthCodeOption) (*oauth2.Token, error) {
	if code == "" {
		return nil, &Error{Code: CodeInvalidGrant, Cause: errors.New("token endpoint: empty authorization code")}
	}
	cctx, st, cancel := h.call(ctx)
	defer cancel()
	tok, err := cfg.Exchange(cctx, code, opts...)
	if err == nil {
		return tok, nil
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		if st.tooLarge.Load() || cctx.Err() != nil || isTransport(err) {
			return nil, transportError(cctx, st, "token endpoint", err)
		}
		// Unparseable success response (HTML, truncated JSON) or no access_token.
		return nil, &Error{Code: CodeProviderError, Cause: errors.New("token endpoint: unusable response")}
	}
	return nil, tokenError(re, eo)
}

func isTransport(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}

// tokenError maps an error answer of a token endpoint. It never keeps the
// body or error_description (Kakao echoes the code there).
func tokenError(re *oauth2.RetrieveError, eo tokenErrorOpts) *Error {
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	code := wireCode(re.ErrorCode)
	var extra struct {
		ErrorCode string `json:"error_code"` // Kakao's KOE…
	}
	_ = json.Unmarshal(re.Body, &extra)
	koe := wireCode(extra.ErrorCode)

	desc := code
	if desc == "" {
		desc = "no error code"
	}
	if koe != "" {
		desc += " (" + koe + ")"
	}
	cause := fmt.Errorf("token endpoint: HTTP %d %s", status, desc)
	if status == http.StatusOK {
		cause = fmt.Errorf("token endpoint: %s", desc)
	}
	switch {
	case code == "invalid_grant" || koe == "KOE320":
		return &Error{Code: CodeInvalidGrant, Cause: cause}
	case eo.okInvalidRequestIsGrant && status == http.StatusOK && code == "invalid_request":
		return &Error{Code: CodeInvalidGrant, Cause: cause}
	case eo.unauthorizedClientIsGrant && status == http.StatusBadRequest && code == "unauthorized_client":
		return &Error{Code: CodeInvalidGrant, Cause: cause}
	default:
		// 5xx, HTML error pages, invalid_client and every other refusal are
		// the provider's or the deployment's problem, not the user's.
		return &Error{Code: CodeProviderError, Cause: cause}
	}
}

// fetch performs one provider request and returns the body of a 2xx JSON
// answer. 5xx, redirects and HTML are CodeProviderError; other 4xx are
// CodeInvalidResponse (a refused access token, a failed envelope).
func (h *httpx) fetch(ctx context.Context, stage string, req *http.Request) ([]byte, *Error) {
	cctx, st, cancel := h.call(ctx)
	defer cancel()
	resp, err := h.client.Do(req.WithContext(cctx))
	if err != nil {
		return nil, transportError(cctx, st, stage, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, transportError(cctx, st, stage, err)
	}
	switch s := resp.StatusCode; {
	case s >= 500:
		return nil, &Error{Code: CodeProviderError, Cause: fmt.Errorf("%s: HTTP %d", stage, s)}
	case s >= 300 && s < 400:
		return nil, &Error{Code: CodeProviderError, Cause: fmt.Errorf("%s: unexpected redirect (HTTP %d)", stage, s)}
	case s >= 400:
		return nil, &Error{Code: CodeInvalidResponse, Cause: fmt.Errorf("%s: HTTP %d", stage, s), Status: s, Wire: errorWireCode(body)}
	case s < 200:
		return nil, &Error{Code: CodeProviderError, Cause: fmt.Errorf("%s: HTTP %d", stage, s)}
	}
	if looksHTML(resp.Header.Get("Content-Type"), body) {
		return nil, &Error{Code: CodeProviderError, Cause: fmt.Errorf("%s: HTML instead of JSON", stage)}
	}
	return body, nil
}

// errorWireCode is the error code of an error body: OAuth's "error" member,
// or Kakao's numeric "code" (as "-401"); "" when there is none that looks
// like a code.
func errorWireCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
		Code  int    `json:"code"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	if e.Error != "" {
		return wireCode(e.Error)
	}
	if e.Code != 0 {
		return strconv.Itoa(e.Code)
	}
	return ""
}

func looksHTML(contentType string, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "text/html" || mt == "application/xhtml+xml" {
		return true
	}
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '<':
			return true
		}
		return false
	}
	return false
}

// getJSON GETs url, with a Bearer token when accessToken is set.
func (h *httpx) getJSON(ctx context.Context, stage, rawURL, accessToken string) ([]byte, *Error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &Error{Code: CodeProviderError, Cause: fmt.Errorf("%s: bad URL", stage)}
	}
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	return h.fetch(ctx, stage, req)
}

// postForm POSTs a form (revocation). authorization, when set, is the whole
// Authorization header value.
func (h *httpx) postForm(ctx context.Context, stage, rawURL string, form url.Values, authorization string) ([]byte, *Error) {
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &Error{Code: CodeProviderError, Cause: fmt.Errorf("%s: bad URL", stage)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return h.fetch(ctx, stage, req)
}
