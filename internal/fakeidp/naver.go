package fakeidp

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Naver Login (the OAuth 2.0 stack under /oauth2.0/): no scopes, no PKCE,
// no nonce, state required at authorize and repeated on the token request,
// token errors with HTTP 200, a {"resultcode","message","response"}
// envelope, legacy grant_type=delete.
type naverDialect struct{ standard }

// Naver is the Kind of this dialect.
const Naver Kind = "naver"

func init() { dialects[Naver] = naverDialect{} }

func (naverDialect) paths() paths {
	return paths{authorize: "/oauth2.0/authorize", consent: "/oauth2.0/consent", token: "/oauth2.0/token",
		userinfo: "/v1/nid/me", revoke: "/oauth2.0/revoke"}
}

func (naverDialect) korean() bool { return true }

func (naverDialect) defaultUser() User {
	return User{Subject: "Wb3xq0kZt8cF1rPq5Jm0y7u4sLdE6aHnVgXo9iKc2Qs", Email: "minji@naver.example", EmailVerified: true, Nickname: "민지", Name: "이민지", Picture: "https://phinf.pstatic.example/profile/minji.png"}
}

func (naverDialect) providerConfig(*Emulator, map[string]any, bool) {}

// ---- authorize ----

func (naverDialect) invalidClient(string) *authzError {
	return &authzError{page: true, status: 400, code: "invalid_client", desc: "등록되지 않은 애플리케이션입니다. client_id를 확인해 주세요."}
}

func (naverDialect) redirectMismatch(string) *authzError {
	return &authzError{page: true, status: 400, code: "redirect_uri_mismatch", desc: "redirect_uri가 등록된 Callback URL과 일치하지 않습니다."}
}

// parseScopes: consent items are chosen in the developer console.
func (naverDialect) parseScopes(string) ([]string, *authzError) { return nil, nil }

// authorizeParams: state is required; there is no nonce, and no PKCE
// (code_challenge is ignored).
func (naverDialect) authorizeParams(_ *Emulator, _ url.Values, req *authRequest) *authzError {
	req.nonce = ""
	if req.state == "" {
		return &authzError{page: true, status: 400, code: "invalid_request", desc: "state 파라미터가 없습니다. 네이버 로그인 요청에는 state 값이 반드시 필요합니다."}
	}
	return nil
}

func (naverDialect) newCode() string { return randAlnum(18) }
func (naverDialect) denied() string  { return "Canceled By User" }

func (naverDialect) consent(p *consentPage, _ *authRequest, u User) {
	p.Lang, p.Title, p.Brand, p.Color = "ko", "네이버 아이디로 로그인", "NAVER", "#03C75A"
	p.Greeting = p.App + "에서 " + nickname(u) + "님의 아래 정보에 접근하려고 합니다."
	p.ItemsHeading = "제공 정보"
	if u.Name != "" {
		p.Items = append(p.Items, "회원이름")
	}
	if u.Email != "" {
		p.Items = append(p.Items, "연락처 이메일 주소")
	}
	if u.Nickname != "" {
		p.Items = append(p.Items, "별명")
	}
	if u.Picture != "" {
		p.Items = append(p.Items, "프로필 사진")
	}
	p.ApproveLabel, p.DenyLabel = "동의하기", "취소"
}

func (naverDialect) errorPage(d *errorPageData, _ int, a *authzError) {
	d.Lang, d.Brand, d.Title = "ko", "NAVER", "네이버 로그인 오류"
	d.CodeLabel = "오류 코드: " + a.code
}

// ---- token ----

// tokenMethods: GET or POST, parameters from the query or the body.
func (naverDialect) tokenMethods() []string               { return []string{http.MethodGet, http.MethodPost} }
func (naverDialect) tokenForm(r *http.Request) url.Values { return r.Form }
func (naverDialect) newAccessToken() string               { return "AAAAO" + randAlnum(80) }
func (naverDialect) newRefreshToken() string              { return randAlnum(60) }
func (naverDialect) rotateRefresh(*grant, time.Time) bool { return false }

// checkCode: the state of the authorization request, instead of
// redirect_uri and PKCE.
func (naverDialect) checkCode(form url.Values, c *authCode) (tokenErrKind, bool) {
	if form.Get("state") != c.req.state {
		return teState, false
	}
	return 0, true
}

// tokenError: every token error has HTTP 200.
func (naverDialect) tokenError(k tokenErrKind, detail string) (int, map[string]any) {
	switch k {
	case teClientUnknown, teClientSecret, teHeaderOnly:
		return oauthError(200, "invalid_request", "wrong client id / client secret pair")
	case teCode, teState:
		return oauthError(200, "invalid_request", "no valid data in session")
	case teRefresh:
		return oauthError(200, "invalid_request", "invalid refresh token")
	default:
		return oauthError(200, "unsupported_grant_type", "grant_type is not supported: "+detail)
	}
}

func (d naverDialect) tokenResponse(_ *Emulator, _ *grant, at, rt string, _ time.Time, _ IDTokenFault, _ bool) map[string]any {
	m := map[string]any{"access_token": at, "token_type": "bearer", "expires_in": fmt.Sprint(int64(d.accessTTL() / time.Second))} // a string
	if rt != "" {
		m["refresh_token"] = rt
	}
	return m
}

// otherGrant is the legacy token deletion: grant_type=delete.
func (naverDialect) otherGrant(e *Emulator, w http.ResponseWriter, grantType string, form url.Values) bool {
	if grantType != "delete" {
		return false
	}
	at := form.Get("access_token")
	e.mu.Lock()
	t, ok := e.access[at]
	if ok {
		t.g.revoked = true
	}
	e.mu.Unlock()
	if !ok {
		e.writeJSON(w, http.StatusOK, map[string]any{"error": "invalid_request", "error_description": "no valid data in session"}, false)
		return true
	}
	e.writeJSON(w, http.StatusOK, map[string]any{"access_token": at, "result": "success"}, false)
	return true
}

// ---- resources ----

func (naverDialect) userinfo(_ *Emulator, _ *http.Request, g *grant) any {
	u := g.user
	resp := map[string]any{"id": u.Subject}
	for k, v := range map[string]string{"nickname": u.Nickname, "name": u.Name, "email": u.Email, "profile_image": u.Picture} {
		if v != "" {
			resp[k] = v
		}
	}
	return map[string]any{"resultcode": "00", "message": "success", "response": resp}
}

func (naverDialect) userinfoAuthError(e *Emulator, w http.ResponseWriter, _ tokenState) {
	e.writeJSON(w, http.StatusUnauthorized, naverAuthFailed(), false)
}

func (naverDialect) genericError(_ *Emulator, endpoint string, status int) any {
	if endpoint == "token" {
		return oauthGenericError(endpoint, status)
	}
	if status == http.StatusUnauthorized {
		return naverAuthFailed()
	}
	return map[string]any{"errorMessage": statusText(status), "errorCode": fmt.Sprint(status)}
}

type naverAPIErr struct {
	Resultcode string `json:"resultcode"`
	Message    string `json:"message"`
}

func naverAuthFailed() naverAPIErr {
	return naverAPIErr{Resultcode: "024", Message: "Authentication failed"}
}

// revoke is POST /oauth2.0/revoke with client_id, client_secret, token,
// token_type_hint: 200 with an empty body; the token pair stops working.
func (naverDialect) revoke(e *Emulator, w http.ResponseWriter, r *http.Request) {
	form := r.Form
	if form.Get("client_id") != e.opts.ClientID ||
		(e.opts.ClientSecret != "" && subtle.ConstantTimeCompare([]byte(form.Get("client_secret")), []byte(e.opts.ClientSecret)) != 1) {
		e.writeJSON(w, http.StatusOK, map[string]any{"error": "invalid_request", "error_description": "wrong client id / client secret pair"}, false)
		return
	}
	e.revokeToken(form.Get("token"))
	w.WriteHeader(http.StatusOK)
}
