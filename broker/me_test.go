package broker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker"
	"github.com/socialbroker/broker/broker/brokertest"
)

func brokertestToken() (string, []byte) { return broker.NewRefreshToken() }

// verifyClaims checks a token through /auth/me's verifier path indirectly
// and returns its decoded claims.
func verifyClaims(t *testing.T, env *brokertest.Env, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", tok)
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr map[string]any
	if err := json.Unmarshal(hb, &hdr); err != nil {
		t.Fatal(err)
	}
	if hdr["alg"] != "RS256" || hdr["typ"] != "at+jwt" || hdr["kid"] == "" {
		t.Fatalf("header = %v, want RS256, at+jwt, kid", hdr)
	}
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(pb, &claims); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "sid", "idp"} {
		if _, ok := claims[k]; !ok {
			t.Fatalf("claim %s missing: %v", k, claims)
		}
	}
	if claims["iss"] != env.URL || claims["aud"] != "https://api.example.com" {
		t.Fatalf("iss/aud = %v/%v", claims["iss"], claims["aud"])
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != env.Config.Tokens.AccessTTL.Seconds() {
		t.Fatalf("exp - iat = %v, want %v", exp-iat, env.Config.Tokens.AccessTTL.Seconds())
	}
	for _, k := range []string{"email", "name", "nickname"} {
		if _, ok := claims[k]; ok {
			t.Fatalf("personal data %q in the access token", k)
		}
	}
	return claims
}

func accessToken(t *testing.T, env *brokertest.Env, refresh string) string {
	t.Helper()
	r := do(t, &http.Client{}, "POST", env.URL+"/auth/token", nil, withCookie(refresh))
	wantStatus(t, r, 200)
	return r.json(t).AccessToken
}

func TestMe(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	uid := env.NewUser(t, "kakao", "3012345678")
	tok, sess := env.NewSession(t, uid)
	at := accessToken(t, env, tok)
	c := &http.Client{}

	r := do(t, c, "GET", env.URL+"/auth/me", nil, map[string]string{"Authorization": "Bearer " + at})
	wantStatus(t, r, 200)
	var me struct {
		Sub        string            `json:"sub"`
		Profile    map[string]string `json:"profile"`
		Identities []struct {
			Provider string    `json:"provider"`
			LinkedAt time.Time `json:"linked_at"`
		} `json:"identities"`
	}
	if err := json.Unmarshal(r.body, &me); err != nil {
		t.Fatal(err)
	}
	if me.Sub != uid || me.Profile["nickname"] != "user-3012345678" || len(me.Identities) != 1 || me.Identities[0].Provider != "kakao" || me.Identities[0].LinkedAt.IsZero() {
		t.Fatalf("/auth/me = %+v", me)
	}

	bad := func(name, token string) {
		t.Helper()
		r := do(t, c, "GET", env.URL+"/auth/me", nil, map[string]string{"Authorization": "Bearer " + token})
		wantStatus(t, r, 401)
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
			t.Fatalf("%s: WWW-Authenticate = %q", name, got)
		}
	}
	flipped := []byte(at)
	flipped[len(flipped)-5] ^= 1
	bad("flipped byte", string(flipped))
	parts := strings.Split(at, ".")
	bad("alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))+"."+parts[1]+".")
	bad("garbage", "abc")
	wantStatus(t, do(t, c, "GET", env.URL+"/auth/me", nil, nil), 401)

	// A revoked session's access tokens stop working here.
	if err := env.Store.RevokeSession(context.Background(), sess.ID, env.Clock.Now(), "test"); err != nil {
		t.Fatal(err)
	}
	bad("revoked session", at)

	// Expired.
	tok2, _ := env.NewSession(t, uid)
	at2 := accessToken(t, env, tok2)
	env.Clock.Advance(env.Config.Tokens.AccessTTL + time.Second)
	bad("expired", at2)
}
