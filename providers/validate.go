package providers

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The preset types.
const (
	TypeKakao  = "kakao"
	TypeNaver  = "naver"
	TypeGoogle = "google"
	TypeOIDC   = "oidc"
	TypeOAuth2 = "oauth2"
)

// ConfigError is one problem in the providers config. NewRegistry returns
// all of them joined (errors.Join); use errors.As on each to read Key.
type ConfigError struct {
	Key string // e.g. providers[2].client_id
	Msg string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Msg }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// claimKeys are the identity fields an oauth2 claims map may set.
var claimKeys = map[string]bool{"subject": true, "email": true, "email_verified": true, "name": true, "picture": true}

// validate checks every entry and returns every problem at once.
func validate(cfgs []Config, opts Options) error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if err := checkURL(opts.RedirectBase); err != nil {
		add("issuer", "redirect base %v", err)
	}
	seen := map[string]int{}
	for i, c := range cfgs {
		key := func(field string) string { return "providers[" + strconv.Itoa(i) + "]." + field }

		switch {
		case c.Name == "":
			add(key("name"), "required")
		case !nameRE.MatchString(c.Name):
			add(key("name"), "%q must match %s", c.Name, nameRE)
		default:
			if j, dup := seen[c.Name]; dup {
				add(key("name"), "duplicate name %q (also providers[%d])", c.Name, j)
			} else {
				seen[c.Name] = i
			}
		}

		known := true
		switch c.Type {
		case TypeKakao, TypeNaver, TypeGoogle, TypeOIDC, TypeOAuth2:
		case "":
			add(key("type"), "required (kakao, naver, google, oidc or oauth2)")
			known = false
		default:
			add(key("type"), "unknown type %q (want kakao, naver, google, oidc or oauth2)", c.Type)
			known = false
		}

		if strings.TrimSpace(c.ClientID) == "" {
			add(key("client_id"), "required")
		}

		for _, f := range []struct{ field, val string }{
			{"auth_url", c.AuthURL}, {"token_url", c.TokenURL}, {"userinfo_url", c.UserinfoURL},
			{"issuer", c.Issuer}, {"jwks_url", c.JWKSURL}, {"revoke_url", c.RevokeURL},
		} {
			if f.val != "" {
				if err := checkURL(f.val); err != nil {
					add(key(f.field), "%v", err)
				}
			}
		}

		for j, s := range c.Scopes {
			if s == "" || strings.ContainsAny(s, " ,\t\r\n") {
				add(key("scopes["+strconv.Itoa(j)+"]"), "%q is not a single scope", s)
			}
		}
		for j, a := range c.AcceptAudiences {
			if strings.TrimSpace(a) == "" {
				add(key("accept_audiences["+strconv.Itoa(j)+"]"), "empty audience")
			}
		}

		if !known {
			continue
		}
		if c.Type != TypeOAuth2 {
			if len(c.Claims) > 0 {
				add(key("claims"), "only for type oauth2, not %s", c.Type)
			}
			if c.Success != nil {
				add(key("success"), "only for type oauth2, not %s", c.Type)
			}
		}
		if c.AdminKey != "" && c.Type != TypeKakao {
			add(key("admin_key"), "only for type kakao, not %s", c.Type)
		}
		switch c.Type {
		case TypeNaver:
			if len(c.Scopes) > 0 {
				add(key("scopes"), "naver takes no scopes (consent items are chosen in the Naver developer console)")
			}
			noIDToken(c, key, add, "naver (OAuth 2.0)")
		case TypeOIDC:
			if c.Issuer == "" {
				add(key("issuer"), "required for type oidc")
			}
		case TypeOAuth2:
			for _, f := range []struct{ field, val string }{
				{"auth_url", c.AuthURL}, {"token_url", c.TokenURL}, {"userinfo_url", c.UserinfoURL},
			} {
				if f.val == "" {
					add(key(f.field), "required for type oauth2")
				}
			}
			noIDToken(c, key, add, "oauth2 (use type oidc for id_tokens)")
			if c.Claims["subject"] == "" {
				add(key("claims.subject"), "required for type oauth2")
			}
			for _, k := range slices.Sorted(maps.Keys(c.Claims)) {
				path := c.Claims[k]
				if !claimKeys[k] {
					add(key("claims."+k), "unknown claim (want subject, email, email_verified, name or picture)")
					continue
				}
				if _, err := parseClaimPath(path); err != nil && path != "" {
					add(key("claims."+k), "%v", err)
				}
			}
			if c.Success != nil {
				if _, err := parseClaimPath(c.Success.Path); err != nil {
					add(key("success.path"), "%v", err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// noIDToken refuses the id_token settings on types that have none.
func noIDToken(c Config, key func(string) string, add func(string, string, ...any), what string) {
	if c.Issuer != "" {
		add(key("issuer"), "does not apply to %s: no id_token", what)
	}
	if c.JWKSURL != "" {
		add(key("jwks_url"), "does not apply to %s: no id_token", what)
	}
}

// checkURL accepts absolute http and https URLs with a host and no fragment.
func checkURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if u.User != nil {
		return errors.New("URL must not carry user info")
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q must have no fragment", s)
	}
	return nil
}
