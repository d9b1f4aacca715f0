package providers

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// Kakao's production endpoints, each replaceable from config.
const (
	kakaoAuthURL     = "https://kauth.kakao.com/oauth/authorize"
	kakaoTokenURL    = "https://kauth.kakao.com/oauth/token"
	kakaoUserinfoURL = "https://kapi.kakao.com/v2/user/me"
	kakaoIssuer      = "https://kauth.kakao.com"
	kakaoJWKSURL     = "https://kauth.kakao.com/.well-known/jwks.json"
	kakaoRevokeURL   = "https://kapi.kakao.com/v1/user/unlink"
)

// kakao is Kakao Login: scopes comma-joined, PKCE S256, and with openid in
// the scopes a nonce-bound id_token verified against Kakao's JWKS (no
// discovery needed). /v2/user/me is always read; its numeric id is the
// subject, kept as its exact decimal text.
type kakao struct {
	*base
	authURL, userinfoURL, revokeURL string
	adminKey                        string
	serviceTerms                    []string // Kakao Sync tags asked on the consent screen
	oauth                           *oauth2.Config
	ids                             *idVerifier
}

var (
	_ Provider             = (*kakao)(nil)
	_ IDTokenVerifier      = (*kakao)(nil)
	_ Revoker              = (*kakao)(nil)
	_ NotificationReceiver = (*kakao)(nil)
)

func init() {
	register("kakao", preset{config: func() presetConfig { return &kakaoConfig{} }, displayName: "Kakao", pkce: true})
}

// kakaoConfig is a `type: kakao` entry.
type kakaoConfig struct {
	Common           `yaml:",inline"`
	Endpoints        `yaml:",inline"`
	IDTokenEndpoints `yaml:",inline"`
	// AdminKey is the app's admin key: server-side unlink, and the
	// credentials of Kakao's unlink webhook.
	AdminKey string `yaml:"admin_key"`
	// ServiceTerms are Kakao Sync's terms tags to ask for on Kakao's
	// consent screen (authorize service_terms); see terms.go.
	ServiceTerms []string `yaml:"service_terms"`
}

func (c *kakaoConfig) check(ck checker) {
	c.Endpoints.checkURLs(ck)
	c.IDTokenEndpoints.checkURLs(ck)
	checkServiceTerms(ck, c.ServiceTerms)
}

func (c *kakaoConfig) build(b *base) Provider {
	k := &kakao{
		base:        b,
		authURL:     or(c.AuthURL, kakaoAuthURL),
		userinfoURL: or(c.UserinfoURL, kakaoUserinfoURL),
		revokeURL:   or(c.RevokeURL, kakaoRevokeURL),
		adminKey:    c.AdminKey,
	}
	k.serviceTerms = slices.Clone(c.ServiceTerms)
	b.info.Nonce = slices.Contains(c.Scopes, "openid")
	k.oauth = b.oauth2Config(k.authURL, or(c.TokenURL, kakaoTokenURL))
	jwks := or(c.JWKSURL, kakaoJWKSURL)
	keys := &keySet{h: b.h, url: func(context.Context) (string, error) { return jwks, nil }}
	// The id_token verifier is there even without openid in the scopes: a
	// Kakao SDK in a native app may still hand us an id_token.
	k.ids = newIDVerifier(or(c.Issuer, kakaoIssuer), keys, c.ClientID, c.AcceptAudiences, b.h.now)
	return k
}

// AuthCodeURL joins scopes with commas; Kakao spells the account chooser
// and a fresh sign-in as prompt=select_account and prompt=login, and has no
// consent prompt (consent is asked when the scopes need it).
func (k *kakao) AuthCodeURL(_ context.Context, o AuthOptions) (string, error) {
	extra := url.Values{"login_hint": {o.LoginHint}}
	if o.Prompt == PromptLogin || o.Prompt == PromptSelectAccount {
		extra.Set("prompt", string(o.Prompt))
	}
	if len(k.serviceTerms) > 0 {
		extra.Set("service_terms", strings.Join(k.serviceTerms, ","))
	}
	return k.authCodeURL(k.authURL, strings.Join(k.scopes, ","), o, extra), nil
}

func (k *kakao) Exchange(ctx context.Context, ex Exchange) (Identity, error) {
	if k.info.Nonce && ex.Nonce == "" {
		return Identity{}, badIDToken("no nonce to check (openid is in the scopes)")
	}
	tok, err := k.exchangeCode(ctx, k.oauth, ex, tokenErrorOpts{})
	if err != nil {
		return Identity{}, err
	}
	var idt *verifiedToken
	if k.info.Nonce {
		raw, err := rawIDToken(tok)
		if err != nil {
			return Identity{}, err
		}
		if idt, err = k.ids.verify(ctx, raw, ex.Nonce); err != nil {
			return Identity{}, err
		}
	}
	body, perr := k.h.getJSON(ctx, "userinfo", k.userinfoURL, tok.AccessToken)
	if perr != nil {
		return Identity{}, perr
	}
	u, err := decodeKakaoUserinfo(body)
	if err != nil {
		return Identity{}, err
	}
	if idt != nil && idt.Subject != u.Subject {
		return Identity{}, badIDToken("sub differs from the userinfo id")
	}
	id := k.identity(u.Subject, tok)
	id.Email, id.EmailVerified, id.Name, id.Picture = u.Email, u.EmailVerified, u.Name, u.Picture
	if idt != nil {
		id.Name = or(id.Name, idt.Nickname)
		id.Picture = or(id.Picture, idt.Picture)
	}
	return id, nil
}

// VerifyIDToken checks an id_token issued by Kakao (e.g. to a native app's
// Kakao SDK, aud = its native app key in accept_audiences). Kakao sends no
// email_verified, so the email is returned unverified.
func (k *kakao) VerifyIDToken(ctx context.Context, rawIDToken, nonce string) (Identity, error) {
	t, err := k.ids.verify(ctx, rawIDToken, nonce)
	if err != nil {
		return Identity{}, err
	}
	id := k.identity(t.Subject, nil)
	id.Email = t.Email
	id.Name = or(t.Nickname, t.Name)
	id.Picture = t.Picture
	return id, nil
}

// Revoke unlinks the user from the app: with admin_key set, as the app
// (KakaoAK, target_id_type=user_id); otherwise with the user's access token.
func (k *kakao) Revoke(ctx context.Context, subject string, g Grant) error {
	if k.adminKey != "" {
		if subject == "" {
			return &Error{Code: CodeInvalidGrant, Cause: errors.New("revoke: no subject to unlink")}
		}
		form := url.Values{"target_id_type": {"user_id"}, "target_id": {subject}}
		return k.revokeForm(ctx, k.revokeURL, form, "KakaoAK "+k.adminKey)
	}
	if g.AccessToken == "" {
		return &Error{Code: CodeInvalidGrant, Cause: errors.New("revoke: no access token and no admin_key")}
	}
	return k.revokeForm(ctx, k.revokeURL, url.Values{}, "Bearer "+g.AccessToken)
}

// Hook is Kakao's unlink webhook, POST /auth/webhooks/kakao/unlink.
func (k *kakao) Hook() string { return "kakao/unlink" }

// Authenticates checks `Authorization: KakaoAK <admin_key>`.
func (k *kakao) Authenticates(r *http.Request) bool {
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && scheme == "KakaoAK" && key != "" && k.adminKey != "" &&
		subtle.ConstantTimeCompare([]byte(key), []byte(k.adminKey)) == 1
}

// ReadNotification reads an unlink call (form-encoded POST, or a GET with a
// query): app_id, user_id, referrer_type. user_id must come once.
func (k *kakao) ReadNotification(r *http.Request) (Notification, error) {
	userID, ok := formOnce(r.PostForm, "user_id")
	if userID == "" && ok {
		userID, ok = formOnce(r.URL.Query(), "user_id")
	}
	if !ok {
		return Notification{}, errors.New("user_id must be sent once.")
	}
	if !isKakaoUserID(userID) {
		return Notification{}, errors.New("user_id must be a Kakao user id (decimal digits).")
	}
	return Notification{Subject: userID, Event: NotificationUnlinked, Detail: r.FormValue("referrer_type")}, nil
}

// formOnce returns the value of a parameter that may appear at most once.
func formOnce(v url.Values, name string) (string, bool) {
	switch vs := v[name]; len(vs) {
	case 0:
		return "", true
	case 1:
		return vs[0], true
	}
	return "", false
}

// isKakaoUserID reports whether s looks like a Kakao user id (회원번호): a
// Long, sent as 1 to 20 decimal digits.
func isKakaoUserID(s string) bool {
	return len(s) <= 20 && isDecimal(s)
}

// kakaoUser is what we take from /v2/user/me.
type kakaoUser struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Picture       string
}

// kakaoUserinfo is the wire shape of /v2/user/me (the parts we read).
type kakaoUserinfo struct {
	ID         scalar `json:"id"`
	Properties *struct {
		Nickname     string `json:"nickname"`
		ProfileImage string `json:"profile_image"`
	} `json:"properties"`
	KakaoAccount *struct {
		Email           string `json:"email"`
		IsEmailValid    bool   `json:"is_email_valid"`
		IsEmailVerified bool   `json:"is_email_verified"`
		Profile         *struct {
			Nickname        string `json:"nickname"`
			ProfileImageURL string `json:"profile_image_url"`
		} `json:"profile"`
	} `json:"kakao_account"`
}

// decodeKakaoUserinfo reads /v2/user/me. The id must be a decimal integer;
// it is kept as sent (ids beyond 2^53 survive). The email is taken only when
// Kakao still considers it valid for this account.
func decodeKakaoUserinfo(body []byte) (kakaoUser, error) {
	var w kakaoUserinfo
	if err := json.Unmarshal(body, &w); err != nil {
		return kakaoUser{}, &Error{Code: CodeInvalidResponse, Cause: errors.New("userinfo: malformed JSON")}
	}
	if !isDecimal(string(w.ID)) {
		return kakaoUser{}, &Error{Code: CodeInvalidResponse, Cause: errors.New("userinfo: id missing or not a decimal integer")}
	}
	u := kakaoUser{Subject: string(w.ID)}
	if a := w.KakaoAccount; a != nil {
		if a.Email != "" && a.IsEmailValid {
			u.Email = a.Email
			u.EmailVerified = a.IsEmailVerified
		}
		if a.Profile != nil {
			u.Name, u.Picture = a.Profile.Nickname, a.Profile.ProfileImageURL
		}
	}
	if p := w.Properties; p != nil {
		u.Name = or(u.Name, p.Nickname)
		u.Picture = or(u.Picture, p.ProfileImage)
	}
	return u, nil
}

// or returns a, or b when a is empty.
func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
