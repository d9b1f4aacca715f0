package broker_test

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
)

// respellings returns other spellings of a compact JWS that lenient
// decoders read as the same token.
func respellings(t *testing.T, tok string) map[string]string {
	t.Helper()
	segs := strings.Split(tok, ".")
	sig, err := base64.RawURLEncoding.DecodeString(segs[2])
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, segs[2][len(segs[2])-1])
	// An RSA-2048 signature is 256 bytes: 342 characters, 4 unused bits.
	sibling := segs[2][:len(segs[2])-1] + string(alphabet[last^1])
	return map[string]string{
		"newline in payload":          segs[0] + "." + segs[1][:5] + "\n" + segs[1][5:] + "." + segs[2],
		"CRLF before signature":       segs[0] + "." + segs[1] + ".\r\n" + segs[2],
		"standard-base64 signature":   segs[0] + "." + segs[1] + "." + base64.RawStdEncoding.EncodeToString(sig),
		"padded signature":            segs[0] + "." + segs[1] + "." + base64.URLEncoding.EncodeToString(sig),
		"trailing-bit sibling":        segs[0] + "." + segs[1] + "." + sibling,
		"trailing-bit sibling and LF": segs[0] + "." + segs[1] + "." + sibling + "\n",
	}
}

// An id_token is exchanged once, whatever its spelling: respelled copies
// of a leaked token mint nothing.
func TestExchangeRefusesRespelledIDTokens(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	kakao := env.Emulators["kakao"]
	tok := kakao.MintIDToken(map[string]any{"sub": "4242"})

	// Respelled before the honest use: refused as not canonical.
	for name, raw := range respellings(t, tok) {
		if r := exchange(t, env, "kakao", raw); r.StatusCode != 400 || r.json(t).Error != "invalid_grant" {
			t.Fatalf("%s (unused token): %d %s, want 400 invalid_grant", name, r.StatusCode, r.body)
		}
	}
	if n := countRows(t, env, "sessions"); n != 0 {
		t.Fatalf("sessions = %d after respelled tokens, want 0", n)
	}
	// The canonical token is accepted once.
	wantStatus(t, exchange(t, env, "kakao", tok), 200)
	wantStatus(t, exchange(t, env, "kakao", tok), 400)
	for name, raw := range respellings(t, tok) {
		if r := exchange(t, env, "kakao", raw); r.StatusCode != 400 {
			t.Fatalf("%s (used token): %d %s, want 400", name, r.StatusCode, r.body)
		}
	}
	if n := countRows(t, env, "sessions"); n != 1 {
		t.Fatalf("sessions = %d, want 1", n)
	}
}

// An exchanged id_token is remembered until its own exp, and one that
// claims to live longer than a day is refused.
func TestExchangeRemembersUntilExp(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	kakao := env.Emulators["kakao"]
	exp := env.Clock.Now().Add(12 * time.Hour).Truncate(time.Second)
	tok := kakao.MintIDToken(map[string]any{"sub": "4343", "exp": exp.Unix()})
	wantStatus(t, exchange(t, env, "kakao", tok), 200)
	var stored time.Time
	if err := env.Store.Pool().QueryRow(t.Context(), `SELECT expires_at FROM used_once WHERE kind = 'id_token'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !stored.Equal(exp) {
		t.Fatalf("remembered until %s, want the token's exp %s", stored, exp)
	}
	long := kakao.MintIDToken(map[string]any{"sub": "4444", "exp": env.Clock.Now().Add(48 * time.Hour).Unix()})
	if r := exchange(t, env, "kakao", long); r.StatusCode != 400 || r.json(t).Error != "invalid_grant" {
		t.Fatalf("two-day id_token: %d %s, want 400 invalid_grant", r.StatusCode, r.body)
	}
}

// Access tokens are accepted only as issued; the form variant's refresh
// token only in its one spelling.
func TestAccessAndRefreshTokensOnlyCanonical(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto"})
	uid := env.NewUser(t, "kakao", "canon")
	refresh, _ := env.NewSession(t, uid)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	r := do(t, env.Client(), "POST", env.URL+"/auth/token", form, nil)
	wantStatus(t, r, 200)
	at, next := r.json(t).AccessToken, r.json(t).RefreshToken

	for name, raw := range respellings(t, at) {
		if strings.ContainsAny(raw, "\r\n") { // cannot travel in a header
			continue
		}
		if r := do(t, env.Client(), "GET", env.URL+"/auth/me", nil, bearer(raw)); r.StatusCode != 401 {
			t.Fatalf("/auth/me with %s: %d, want 401", name, r.StatusCode)
		}
	}
	wantStatus(t, do(t, env.Client(), "GET", env.URL+"/auth/me", nil, bearer(at)), 200)

	// A 43-character refresh token has 2 unused bits: its siblings are refused.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, next[len(next)-1])
	sibling := next[:len(next)-1] + string(alphabet[last^1])
	r = do(t, env.Client(), "POST", env.URL+"/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {sibling}}, nil)
	wantStatus(t, r, 401)
	r = do(t, env.Client(), "POST", env.URL+"/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next}}, nil)
	wantStatus(t, r, 200)
}
