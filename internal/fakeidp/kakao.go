package fakeidp

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Kakao Login: comma-separated scopes checked against the app's consent
// items, KOE error codes, {"code","msg"} API errors, /v2/user/me with a
// numeric id, the unlink and logout APIs, an id_token with openid.
type kakaoDialect struct{ standard }

// Kakao is the Kind of this dialect.
const Kakao Kind = "kakao"

func init() { dialects[Kakao] = kakaoDialect{} }

var kakaoScopes = []string{
	"profile_nickname", "profile_image", "account_email", "name", "gender", "age_range", "birthday",
	"birthyear", "phone_number", "account_ci", "openid", "friends", "talk_message", "talk_calendar",
	"plusfriends", "shipping_address", "legal_name", "legal_birth_date", "legal_gender",
}

const (
	kakaoRefreshTTL   = 5183999 * time.Second
	kakaoOIDCUserinfo = "/v1/oidc/userinfo"
	kakaoLogout       = "/v1/user/logout"
)

func (kakaoDialect) paths() paths {
	return paths{authorize: "/oauth/authorize", consent: "/oauth/consent", token: "/oauth/token",
		userinfo: "/v2/user/me", jwks: "/.well-known/jwks.json",
		discovery: "/.well-known/openid-configuration", revoke: "/v1/user/unlink"}
}

func (kakaoDialect) oidc() bool              { return true }
func (kakaoDialect) korean() bool            { return true }
func (kakaoDialect) jsonContentType() string { return "application/json;charset=UTF-8" }

func (kakaoDialect) defaultUser() User {
	return User{Subject: "3012345678", Email: "ryan@kakao.example", EmailVerified: true, Nickname: "라이언", Name: "김라이언", Picture: "https://k.kakaocdn.example/dn/ryan/img_640x640.jpg"}
}

func (kakaoDialect) checkUser(u User) error {
	if !isJSONInteger(u.Subject) {
		return fmt.Errorf("emulator: a Kakao User.Subject must be decimal digits without leading zeros, got %q", u.Subject)
	}
	return nil
}

func (kakaoDialect) providerConfig(e *Emulator, m map[string]any, _ bool) {
	m["scopes"] = []string{"openid", "profile_nickname", "profile_image", "account_email"}
	if e.opts.AdminKey != "" {
		m["admin_key"] = e.opts.AdminKey
	}
	if len(e.opts.ServiceTerms) > 0 {
		tags := make([]string, len(e.opts.ServiceTerms))
		for i, t := range e.opts.ServiceTerms {
			tags[i] = t.Tag
		}
		m["service_terms"] = tags
	}
}

func (kakaoDialect) routes(e *Emulator, mux *http.ServeMux) {
	mux.HandleFunc(kakaoOIDCUserinfo, e.handleUserinfo)
	mux.HandleFunc(kakaoLogout, e.handleKakaoLogout)
	mux.HandleFunc(kakaoServiceTerms, e.handleKakaoServiceTerms)
}

// authorizeParams: PKCE, and Kakao Sync's service_terms.
func (kakaoDialect) authorizeParams(e *Emulator, q url.Values, req *authRequest) *authzError {
	if aerr := e.parsePKCE(q, req, false); aerr != nil {
		return aerr
	}
	req.terms = e.requestedTerms(q)
	return nil
}

// ---- authorize ----

func (kakaoDialect) invalidClient(clientID string) *authzError {
	return &authzError{page: true, status: 400, code: "KOE101", desc: fmt.Sprintf("잘못된 앱 키를 사용했습니다. Not exist client_id [%s]", clientID)}
}

func (kakaoDialect) redirectMismatch(string) *authzError {
	return &authzError{page: true, status: 400, code: "KOE006", desc: "등록하지 않은 리다이렉트 URI를 사용해 인가 코드를 요청했습니다."}
}

func (kakaoDialect) badResponseType(rt string) *authzError {
	return &authzError{code: "invalid_request", desc: "Unsupported response type: " + rt}
}

// parseScopes: documented as comma-separated; space-separated lists (what
// golang.org/x/oauth2 sends) are accepted by the real server too.
func (kakaoDialect) parseScopes(raw string) ([]string, *authzError) {
	items := strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' })
	if len(items) == 0 {
		return []string{"profile_nickname", "profile_image", "account_email", "openid"}, nil
	}
	var out []string
	for _, it := range items {
		if !slices.Contains(kakaoScopes, it) {
			return nil, &authzError{page: true, status: 400, code: "KOE205", desc: fmt.Sprintf("설정하지 않은 동의 항목을 요청했습니다: %s", it)}
		}
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out, nil
}

func (kakaoDialect) newCode() string { return randToken(64) } // ~86 characters, like Kakao's codes
func (kakaoDialect) denied() string  { return "User denied access" }

func (kakaoDialect) consent(p *consentPage, req *authRequest, u User) {
	labels := map[string]string{
		"profile_nickname": "닉네임", "profile_image": "프로필 사진", "account_email": "카카오계정(이메일)",
		"name": "이름", "gender": "성별", "age_range": "연령대", "birthday": "생일", "birthyear": "출생 연도",
		"phone_number": "카카오계정(전화번호)", "account_ci": "CI(연계정보)", "openid": "OpenID Connect 사용자 식별",
	}
	p.Lang, p.Title, p.Brand, p.Color, p.ButtonText = "ko", "카카오계정 동의 화면", "kakao", "#FEE500", "#191919"
	p.Greeting = nickname(u) + " 님, " + p.App + " 서비스 이용을 위해 아래 정보 제공에 동의해 주세요."
	p.ItemsHeading = "제공 항목"
	for _, s := range req.scopes {
		l := labels[s]
		if l == "" {
			l = s
		}
		p.Items = append(p.Items, l+" ("+s+")")
	}
	p.ApproveLabel, p.DenyLabel = "동의하고 계속하기", "취소"
}

func (kakaoDialect) errorPage(d *errorPageData, _ int, a *authzError) {
	d.Lang, d.Brand, d.Title = "ko", "kakao", "앱 관리자 설정 오류 ("+a.code+")"
	d.CodeLabel = "에러 코드: " + a.code
}

// ---- token ----

func (kakaoDialect) accessTTL() time.Duration  { return 43199 * time.Second }
func (kakaoDialect) refreshTTL() time.Duration { return kakaoRefreshTTL }
func (kakaoDialect) newAccessToken() string    { return randToken(40) }

// rotateRefresh: a new refresh token only when less than a month is left.
func (kakaoDialect) rotateRefresh(g *grant, now time.Time) bool {
	return g.refreshExp.Sub(now) < 30*24*time.Hour
}

func (kakaoDialect) tokenError(k tokenErrKind, detail string) (int, map[string]any) {
	ke := func(status int, code, desc, koe string) (int, map[string]any) {
		return status, map[string]any{"error": code, "error_description": desc, "error_code": koe}
	}
	switch k {
	case teClientUnknown, teHeaderOnly:
		return ke(401, "invalid_client", fmt.Sprintf("Not exist client_id [%s]", detail), "KOE101")
	case teClientSecret:
		return ke(401, "invalid_client", "Bad client credentials", "KOE010")
	case teCode:
		return ke(400, "invalid_grant", "authorization code not found for code="+detail, "KOE320")
	case teRedirect:
		return ke(400, "invalid_grant", "Redirect URI mismatch.", "KOE303")
	case tePKCEMissing, tePKCEInvalid, tePKCEUnexpected:
		return ke(400, "invalid_grant", "PKCE verification failed: invalid code_verifier", "KOE320")
	case teRefresh:
		return ke(400, "invalid_grant", "expired_or_invalid_refresh_token", "KOE322")
	default:
		return ke(400, "invalid_request", "unsupported grant_type: "+detail, "KOE001")
	}
}

func (d kakaoDialect) tokenResponse(e *Emulator, g *grant, at, rt string, now time.Time, fault IDTokenFault, first bool) map[string]any {
	m := map[string]any{"token_type": "bearer", "access_token": at, "expires_in": int64(d.accessTTL() / time.Second)}
	if rt != "" {
		m["refresh_token"] = rt
		m["refresh_token_expires_in"] = int64(kakaoRefreshTTL / time.Second)
	}
	if first && len(g.scopes) > 0 {
		m["scope"] = strings.Join(g.scopes, " ")
	}
	if g.has("openid") {
		m["id_token"] = e.idTokenFor(g, at, now, fault, first)
	}
	return m
}

// idTokenClaims: no email_verified, no at_hash; exp with the access token.
func (d kakaoDialect) idTokenClaims(c map[string]any, g *grant, _ string, now time.Time) {
	u := g.user
	c["exp"] = now.Add(d.accessTTL()).Unix()
	c["auth_time"] = g.authTime.Unix()
	if g.has("profile_nickname") && u.Nickname != "" {
		c["nickname"] = u.Nickname
	}
	if g.has("profile_image") && u.Picture != "" {
		c["picture"] = u.Picture
	}
	if g.has("account_email") && u.Email != "" {
		c["email"] = u.Email
	}
}

// ---- resources ----

func (kakaoDialect) userinfo(e *Emulator, r *http.Request, g *grant) any {
	if r.URL.Path == kakaoOIDCUserinfo {
		return kakaoOIDCUserinfoBody(g)
	}
	e.mu.Lock()
	connected, ok := e.linked[g.user.Subject]
	e.mu.Unlock()
	if !ok {
		connected = g.authTime
	}
	return kakaoMe(g, connected)
}

func (kakaoDialect) userinfoAuthError(e *Emulator, w http.ResponseWriter, st tokenState) {
	msg := "this access token does not exist"
	if st == tokenExpired {
		msg = "this access token is already expired"
	}
	e.writeJSON(w, http.StatusUnauthorized, kakaoAPIError(-401, msg), false)
}

func (kakaoDialect) genericError(_ *Emulator, endpoint string, status int) any {
	if endpoint == "token" {
		code := "invalid_request"
		if status == http.StatusUnauthorized {
			code = "invalid_client"
		}
		return map[string]any{"error": code, "error_description": statusText(status), "error_code": "KOE001"}
	}
	if status == http.StatusUnauthorized {
		return kakaoAPIError(-401, "this access token does not exist")
	}
	return kakaoAPIError(-1, statusText(status))
}

func (kakaoDialect) discovery(e *Emulator, m map[string]any) {
	m["userinfo_endpoint"] = e.base + kakaoOIDCUserinfo
	m["request_uri_parameter_supported"] = false
	m["claims_supported"] = []string{"iss", "aud", "sub", "iat", "exp", "auth_time", "nonce", "nickname", "picture", "email"}
}

type kakaoAPIErr struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

func kakaoAPIError(code int, msg string) kakaoAPIErr { return kakaoAPIErr{Code: code, Msg: msg} }

// kakaoMe is the body of GET /v2/user/me. The id is a JSON number written
// digit for digit (json.Number), so ids above 2^53 survive.
func kakaoMe(g *grant, connectedAt time.Time) map[string]any {
	u := g.user
	acct := map[string]any{}
	profile := map[string]any{}
	props := map[string]any{}
	nick, img := g.has("profile_nickname"), g.has("profile_image")
	acct["profile_nickname_needs_agreement"] = !nick
	acct["profile_image_needs_agreement"] = !img
	if nick {
		profile["nickname"] = u.Nickname
		profile["is_default_nickname"] = false
		props["nickname"] = u.Nickname
	}
	if img {
		if u.Picture != "" {
			profile["thumbnail_image_url"] = u.Picture
			profile["profile_image_url"] = u.Picture
			props["profile_image"] = u.Picture
			props["thumbnail_image"] = u.Picture
		}
		profile["is_default_image"] = u.Picture == ""
	}
	if len(profile) > 0 {
		acct["profile"] = profile
	}
	if g.has("account_email") {
		if u.Email != "" {
			acct["email_needs_agreement"] = false
			acct["has_email"] = true
			acct["is_email_valid"] = true
			acct["is_email_verified"] = u.EmailVerified
			acct["email"] = u.Email
		} else { // asked for, but the user declined the optional item
			acct["email_needs_agreement"] = true
			acct["has_email"] = true
		}
	}
	if g.has("name") && u.Name != "" {
		acct["name_needs_agreement"] = false
		acct["name"] = u.Name
	}
	out := map[string]any{
		"id":            json.Number(u.Subject),
		"connected_at":  connectedAt.UTC().Format(time.RFC3339),
		"kakao_account": acct,
	}
	if len(props) > 0 {
		out["properties"] = props
	}
	return out
}

// kakaoOIDCUserinfoBody is the body of Kakao's /v1/oidc/userinfo.
func kakaoOIDCUserinfoBody(g *grant) map[string]any {
	u := g.user
	m := map[string]any{"sub": u.Subject}
	if g.has("profile_nickname") && u.Nickname != "" {
		m["nickname"] = u.Nickname
	}
	if g.has("profile_image") && u.Picture != "" {
		m["picture"] = u.Picture
	}
	if g.has("account_email") && u.Email != "" {
		m["email"] = u.Email
		m["email_verified"] = u.EmailVerified
	}
	return m
}

// revoke is POST /v1/user/unlink, either with the admin key
// (Authorization: KakaoAK <key>, target_id_type=user_id, target_id=<id>) or
// with the user's access token. All the user's tokens expire.
func (d kakaoDialect) revoke(e *Emulator, w http.ResponseWriter, r *http.Request) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	var subject string
	switch {
	case strings.EqualFold(scheme, "KakaoAK"):
		if e.opts.AdminKey == "" || subtle.ConstantTimeCompare([]byte(cred), []byte(e.opts.AdminKey)) != 1 {
			e.writeJSON(w, http.StatusUnauthorized, kakaoAPIError(-401, "wrong appKey type or the admin key does not exist"), false)
			return
		}
		if r.PostForm.Get("target_id_type") != "user_id" || !isJSONInteger(r.PostForm.Get("target_id")) {
			e.writeJSON(w, http.StatusBadRequest, kakaoAPIError(-2, "target_id_type must be user_id and target_id a user id"), false)
			return
		}
		subject = r.PostForm.Get("target_id")
	case strings.EqualFold(scheme, "Bearer"):
		g, st := e.lookupAccess(cred)
		if st != tokenOK {
			d.userinfoAuthError(e, w, st)
			return
		}
		subject = g.user.Subject
	default:
		e.writeJSON(w, http.StatusUnauthorized, kakaoAPIError(-401, "this access token does not exist"), false)
		return
	}
	e.mu.Lock()
	_, linked := e.linked[subject]
	if linked {
		delete(e.linked, subject)
		delete(e.agreed, subject)
		e.revokeSubjectLocked(subject)
	}
	e.mu.Unlock()
	if !linked {
		e.writeJSON(w, http.StatusBadRequest, kakaoAPIError(-101, "NotRegisteredUserException"), false)
		return
	}
	e.writeJSON(w, http.StatusOK, map[string]any{"id": json.Number(subject)}, false)
}

// handleKakaoLogout: POST /v1/user/logout with a Bearer token expires that
// grant's tokens and answers {"id":<id>}.
func (e *Emulator) handleKakaoLogout(w http.ResponseWriter, r *http.Request) {
	if !methodIn(r, http.MethodPost) {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	g, st := e.lookupAccess(bearerToken(r))
	if st != tokenOK {
		e.d.userinfoAuthError(e, w, st)
		return
	}
	e.mu.Lock()
	g.revoked = true
	e.mu.Unlock()
	e.writeJSON(w, http.StatusOK, map[string]any{"id": json.Number(g.user.Subject)}, false)
}
