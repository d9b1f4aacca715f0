package verify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/verify"
)

// The two functions below are the Go snippets of docs/integrating.md's
// section on the verify package, verbatim (TestDocSnippets checks it).

// newAPI returns the service's handler. issuer is the broker's issuer
// (https://auth.example.com), audience the API's entry of tokens.audience
// (https://api.example.com). Call it once, at startup.
func newAPI(ctx context.Context, issuer, audience string) (http.Handler, error) {
	v, err := verify.New(ctx, issuer, audience) // reads discovery and the JWKS
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		claims, _ := verify.ClaimsFrom(r.Context()) // set by the middleware
		fmt.Fprintf(w, "orders of user %s, session %s\n", claims.Subject, claims.SessionID)
	})
	return v.Middleware(mux), nil // 401 without a valid Bearer token
}

// userOf checks a token that arrives outside an HTTP request (a WebSocket
// message, a queued job) with the verifier that the service shares.
func userOf(ctx context.Context, v *verify.Verifier, raw string) (string, error) {
	claims, err := v.Verify(ctx, raw)
	switch {
	case errors.Is(err, verify.ErrExpired):
		return "", errors.New("session expired: get a new access token")
	case err != nil:
		return "", err // wraps verify.ErrInvalidToken
	}
	return claims.Subject, nil
}

const docSection = "### Verifying access tokens in a Go service with the verify package"

// goSnippets returns the ```go blocks of the section of docs/integrating.md
// headed docSection, without their import lines.
func goSnippets(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/integrating.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n"+docSection+"\n")
	if !ok {
		t.Fatalf("docs/integrating.md has no heading %q", docSection)
	}
	if i := strings.Index(sec, "\n#"); i >= 0 { // up to the next heading
		sec = sec[:i]
	}
	var blocks []string
	for {
		_, rest, ok := strings.Cut(sec, "```go\n")
		if !ok {
			return blocks
		}
		block, after, ok := strings.Cut(rest, "```\n")
		if !ok {
			t.Fatalf("unterminated go block in %q", docSection)
		}
		var lines []string
		for _, l := range strings.SplitAfter(block, "\n") {
			if !strings.HasPrefix(l, "import ") {
				lines = append(lines, l)
			}
		}
		blocks = append(blocks, strings.TrimSpace(strings.Join(lines, "")))
		sec = after
	}
}

// The docs' snippets are this file's code, and they work against a real
// broker: the handler answers with the token's user and session, and
// refuses without a token; userOf returns the user, then says expired.
func TestDocSnippets(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("docsnippet_test.go")
	if err != nil {
		t.Fatal(err)
	}
	blocks := goSnippets(t)
	if len(blocks) != 2 {
		t.Fatalf("go blocks in %q: got %d, want 2", docSection, len(blocks))
	}
	for i, b := range blocks {
		if !strings.Contains(string(src), b) {
			t.Errorf("go block %d of %q is not verbatim in docsnippet_test.go:\n%s", i, docSection, b)
		}
	}

	env := newBroker(t, time.Minute)
	sess := newSession(t, env)
	tok := sess.accessToken(t)
	ctx := context.Background()

	h, err := newAPI(ctx, env.URL, audience)
	if err != nil {
		t.Fatalf("newAPI: %v", err)
	}
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)
	get := func(auth string) (int, string, string) {
		req, _ := http.NewRequest("GET", api.URL+"/orders", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header.Get("WWW-Authenticate")
	}
	status, body, _ := get("Bearer " + tok)
	if want := "orders of user " + sess.user + ", session "; status != 200 || !strings.HasPrefix(body, want) {
		t.Errorf("GET /orders with the token: got %d %q, want 200 %q…", status, body, want)
	}
	if status, _, challenge := get(""); status != 401 || challenge != "Bearer" {
		t.Errorf("GET /orders without a token: got %d, WWW-Authenticate %q; want 401, %q", status, challenge, "Bearer")
	}

	v, err := verify.NewWithConfig(ctx, verify.Config{Issuer: env.URL, Audience: audience, Now: env.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if user, err := userOf(ctx, v, tok); err != nil || user != sess.user {
		t.Errorf("userOf(fresh token): got %q, %v; want %q, nil", user, err, sess.user)
	}
	env.Clock.Advance(env.Config.Tokens.AccessTTL + verify.Leeway)
	if _, err := userOf(ctx, v, tok); err == nil || !strings.Contains(err.Error(), "session expired") {
		t.Errorf("userOf(expired token): got %v, want the session-expired error", err)
	}
	if _, err := userOf(ctx, v, "x.y.z"); !errors.Is(err, verify.ErrInvalidToken) {
		t.Errorf("userOf(garbage): got %v, want %v", err, verify.ErrInvalidToken)
	}
}
