package providers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/oauth2"
)

const kakaoUserinfoSample = `{
  "id": 9007199254740993,
  "connected_at": "2026-01-01T00:00:00Z",
  "properties": {"nickname": "legacy-nick", "profile_image": "https://img.example/legacy.png"},
  "kakao_account": {
    "profile_needs_agreement": false,
    "profile": {"nickname": "nick", "thumbnail_image_url": "https://img.example/t.png", "profile_image_url": "https://img.example/p.png", "is_default_image": false},
    "email_needs_agreement": false,
    "is_email_valid": true,
    "is_email_verified": true,
    "email": "user@example.com",
    "age_range": "20-29"
  }
}`

const naverUserinfoSample = `{"resultcode":"00","message":"success","response":{"id":"32742776","nickname":"nick","name":"Real Name","email":"user@naver.com","gender":"F","age":"40-49","profile_image":"https://img.example/n.png","mobile":"010-0000-0000"}}`

func TestDecodeKakaoUserinfo(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      kakaoUser
		wantError string
	}{
		{"full", kakaoUserinfoSample, kakaoUser{Subject: "9007199254740993", Email: "user@example.com", EmailVerified: true, Name: "nick", Picture: "https://img.example/p.png"}, ""},
		{"id only", `{"id":3012345678}`, kakaoUser{Subject: "3012345678"}, ""},
		{"legacy properties", `{"id":1,"properties":{"nickname":"old","profile_image":"x"}}`, kakaoUser{Subject: "1", Name: "old", Picture: "x"}, ""},
		{"email no longer valid", `{"id":1,"kakao_account":{"email":"a@b","is_email_valid":false,"is_email_verified":true}}`, kakaoUser{Subject: "1"}, ""},
		{"email valid, unverified", `{"id":1,"kakao_account":{"email":"a@b","is_email_valid":true,"is_email_verified":false}}`, kakaoUser{Subject: "1", Email: "a@b"}, ""},
		{"id as string", `{"id":"42"}`, kakaoUser{Subject: "42"}, ""},
		{"float id", `{"id":3.012345678e+09}`, kakaoUser{}, CodeInvalidResponse},
		{"negative id", `{"id":-1}`, kakaoUser{}, CodeInvalidResponse},
		{"no id", `{"kakao_account":{}}`, kakaoUser{}, CodeInvalidResponse},
		{"error envelope", `{"code":-401,"msg":"this access token does not exist"}`, kakaoUser{}, CodeInvalidResponse},
		{"not json", `<html>`, kakaoUser{}, CodeInvalidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeKakaoUserinfo([]byte(tt.body))
			if code := errCode(err); code != tt.wantError {
				t.Fatalf("error code: got %q (%v), want %q", code, err, tt.wantError)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeNaverUserinfo(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      naverUser
		wantError string
	}{
		{"full", naverUserinfoSample, naverUser{Subject: "32742776", Email: "user@naver.com", Name: "nick", Picture: "https://img.example/n.png"}, ""},
		{"name when no nickname", `{"resultcode":"00","response":{"id":"x","name":"N"}}`, naverUser{Subject: "x", Name: "N"}, ""},
		{"failed envelope", `{"resultcode":"024","message":"Authentication failed"}`, naverUser{}, CodeInvalidResponse},
		{"no resultcode", `{"response":{"id":"x"}}`, naverUser{}, CodeInvalidResponse},
		{"no id", `{"resultcode":"00","response":{"email":"a@b"}}`, naverUser{}, CodeInvalidResponse},
		{"no response", `{"resultcode":"00"}`, naverUser{}, CodeInvalidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeNaverUserinfo([]byte(tt.body))
			if code := errCode(err); code != tt.wantError {
				t.Fatalf("error code: got %q (%v), want %q", code, err, tt.wantError)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func errCode(err error) string {
	if err == nil {
		return ""
	}
	return ErrorCode(err)
}

func TestClaimPath(t *testing.T) {
	doc, err := decodeJSONDoc([]byte(`{"id":9007199254740993,"f":1.50,"ok":true,"s":"x","response":{"id":"abc","emails":[{"value":"a@b"}]},"n":null}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		want   string
		wantOK bool
	}{
		{"id", "9007199254740993", true},
		{"f", "1.50", true},
		{"ok", "true", true},
		{"s", "x", true},
		{"response.id", "abc", true},
		{"response.emails.0.value", "a@b", true},
		{"response.emails.1.value", "", false},
		{"response", "", false},
		{"n", "", false},
		{"missing.deeper", "", false},
		{"s.deeper", "", false},
	}
	for _, tt := range tests {
		p, err := parseClaimPath(tt.path)
		if err != nil {
			t.Fatalf("parseClaimPath(%q): %v", tt.path, err)
		}
		got, ok := p.str(doc)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: got %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.wantOK)
		}
	}
	for _, bad := range []string{"", ".", "a..b", "a."} {
		if _, err := parseClaimPath(bad); err == nil {
			t.Errorf("parseClaimPath(%q): got no error, want one", bad)
		}
	}
	if _, err := decodeJSONDoc([]byte(`{"a":1} {"b":2}`)); err == nil {
		t.Error("decodeJSONDoc with trailing data: got no error, want one")
	}
}

func TestAudienceOK(t *testing.T) {
	iv := &idVerifier{clientID: "web", audiences: []string{"web", "native"}}
	tests := []struct {
		aud  []string
		azp  string
		want bool
	}{
		{[]string{"web"}, "", true},
		{[]string{"native"}, "", true},
		{[]string{"web"}, "android-client", true}, // single audience: azp not checked (Google Android sign-in)
		{[]string{"other"}, "", false},
		{nil, "", false},
		{[]string{"web", "other"}, "web", true},
		{[]string{"web", "other"}, "other", false},
		{[]string{"web", "other"}, "", false},
		{[]string{"web", "native"}, "", true},
	}
	for _, tt := range tests {
		if got := iv.audienceOK(tt.aud, tt.azp); got != tt.want {
			t.Errorf("audienceOK(%v, %q): got %v, want %v", tt.aud, tt.azp, got, tt.want)
		}
	}
}

func TestTokenErrorMapping(t *testing.T) {
	resp := func(status int) *http.Response {
		return &http.Response{StatusCode: status, Status: http.StatusText(status)}
	}
	tests := []struct {
		name     string
		re       *oauth2.RetrieveError
		eo       tokenErrorOpts
		wantCode string
	}{
		{"invalid_grant", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_grant"}, tokenErrorOpts{}, CodeInvalidGrant},
		{"kakao KOE320", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_grant", ErrorDescription: "authorization code not found for code=SECRETCODE",
			Body: []byte(`{"error":"invalid_grant","error_description":"authorization code not found for code=SECRETCODE","error_code":"KOE320"}`)}, tokenErrorOpts{}, CodeInvalidGrant},
		{"naver 200 invalid_request", &oauth2.RetrieveError{Response: resp(200), ErrorCode: "invalid_request", ErrorDescription: "no valid data in session"}, tokenErrorOpts{okInvalidRequestIsGrant: true}, CodeInvalidGrant},
		{"invalid_request elsewhere", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_request"}, tokenErrorOpts{okInvalidRequestIsGrant: true}, CodeProviderError},
		{"invalid_client", &oauth2.RetrieveError{Response: resp(401), ErrorCode: "invalid_client"}, tokenErrorOpts{}, CodeProviderError},
		{"500 html", &oauth2.RetrieveError{Response: resp(500), Body: []byte("<html>oops</html>")}, tokenErrorOpts{}, CodeProviderError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tokenError(tt.re, tt.eo)
			if e.Code != tt.wantCode {
				t.Errorf("code: got %q, want %q", e.Code, tt.wantCode)
			}
			msg := e.Error()
			for _, secret := range []string{"SECRETCODE", "no valid data", "oops", "authorization code not found"} {
				if strings.Contains(msg, secret) {
					t.Errorf("cause %q leaks %q", msg, secret)
				}
			}
		})
	}
	e := tokenError(tests[1].re, tokenErrorOpts{})
	if got, want := e.Cause.Error(), "token endpoint: HTTP 400 invalid_grant (KOE320)"; got != want {
		t.Errorf("cause: got %q, want %q", got, want)
	}
}

func TestCappedBody(t *testing.T) {
	tests := []struct {
		size    int
		wantErr error
	}{
		{maxBody - 1, nil},
		{maxBody, nil},
		{maxBody + 1, errBodyTooLarge},
		{3 * maxBody, errBodyTooLarge},
	}
	for _, tt := range tests {
		for _, limitReader := range []bool{false, true} {
			st := &callState{}
			var r io.Reader = &cappedBody{rc: io.NopCloser(iotest.HalfReader(bytes.NewReader(make([]byte, tt.size)))), remaining: maxBody, st: st}
			if limitReader { // how x/oauth2 reads token responses
				r = io.LimitReader(r, maxBody)
			}
			_, err := io.ReadAll(r)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("size %d (LimitReader %v): got error %v, want %v", tt.size, limitReader, err, tt.wantErr)
			}
			if got := st.tooLarge.Load(); got != (tt.wantErr != nil) {
				t.Errorf("size %d: tooLarge = %v, want %v", tt.size, got, tt.wantErr != nil)
			}
		}
	}
}

func TestTransportErrorTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-ctx.Done()
	if e := transportError(ctx, nil, "token endpoint", errors.New("oauth2: cannot fetch token: flattened")); e.Code != CodeProviderTimeout {
		t.Errorf("got %q, want %q", e.Code, CodeProviderTimeout)
	}
}

func BenchmarkDecodeKakaoUserinfo(b *testing.B) {
	body := []byte(kakaoUserinfoSample)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := decodeKakaoUserinfo(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeNaverUserinfo(b *testing.B) {
	body := []byte(naverUserinfoSample)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := decodeNaverUserinfo(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaimsPath measures the oauth2 preset's userinfo mapping: decode
// with UseNumber, success check, five dotted paths.
func BenchmarkClaimsPath(b *testing.B) {
	body := []byte(naverUserinfoSample)
	p := &oauth2Provider{base: &base{info: Info{Name: "naver-generic"}}}
	p.subject, _ = parseClaimPath("response.id")
	p.email, _ = parseClaimPath("response.email")
	p.name, _ = parseClaimPath("response.nickname")
	p.picture, _ = parseClaimPath("response.profile_image")
	p.successPath, _ = parseClaimPath("resultcode")
	p.successEquals = "00"
	b.ReportAllocs()
	for b.Loop() {
		doc, err := decodeJSONDoc(body)
		if err != nil {
			b.Fatal(err)
		}
		id, err := p.mapClaims(doc)
		if err != nil || id.Subject != "32742776" {
			b.Fatalf("got %q, %v", id.Subject, err)
		}
	}
}
