package config

import (
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var (
	k32 = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	k64 = base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
)

const valid = `
issuer: https://auth.example.com/
database:
  url: ${DATABASE_URL}
cookies:
  hash_key: ${HASH}
  block_key: ${BLOCK}
tokens:
  access_ttl: 4s
  audience: [https://api.example.com]
keys:
  encryption_key: ${ENC}
redirects:
  allowed: [https://app.example.com/]
  default: https://app.example.com/
limits:
  per_minute: { login: 0 }
  trusted_proxies: [10.0.0.0/8, 192.0.2.1]
providers:
  - name: kakao
    type: kakao
    client_id: ${KAKAO_CLIENT_ID}
    scopes: [profile_nickname]
`

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func goodEnv() map[string]string {
	return map[string]string{"DATABASE_URL": "postgres://db/broker", "HASH": k64, "BLOCK": k32, "ENC": k32, "KAKAO_CLIENT_ID": "rest-key"}
}

func TestParseValid(t *testing.T) {
	c, err := Parse([]byte(valid), env(goodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://auth.example.com" {
		t.Errorf("issuer = %q, want trailing slash trimmed", c.Issuer)
	}
	if c.Tokens.AccessTTL != 4*time.Second || c.Tokens.RefreshTTL != 720*time.Hour || c.Tokens.ReuseGrace != 10*time.Second {
		t.Errorf("tokens = %+v", c.Tokens)
	}
	if len(c.Cookies.HashKey) != 64 || len(c.Cookies.BlockKey) != 32 || !c.Cookies.Secure || !c.Database.AutoMigrate {
		t.Errorf("cookies/database = %+v %+v", c.Cookies, c.Database)
	}
	if c.Limits.Login != 0 || c.Limits.Token != 120 || len(c.Limits.TrustedProxies) != 2 {
		t.Errorf("limits = %+v", c.Limits)
	}
	if c.Signup.Mode != "form" || c.Providers[0].Map()["client_id"] != "rest-key" {
		t.Errorf("signup/providers = %+v %+v", c.Signup, c.Providers)
	}
}

// An expanded value cannot change the document's structure.
func TestExpansionIsScalarOnly(t *testing.T) {
	e := goodEnv()
	e["KAKAO_CLIENT_ID"] = "x\n    client_secret: injected"
	c, err := Parse([]byte(valid), env(e))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Providers[0].Map(); p["client_secret"] != nil || !strings.Contains(p["client_id"].(string), "injected") {
		t.Fatalf("expansion changed the structure: %+v", c.Providers[0])
	}
}

func TestEveryProblemNamedAtOnce(t *testing.T) {
	doc := strings.NewReplacer(
		"access_ttl: 4s", "access_ttl: soon\n  bogus: 1",
		"client_id: ${KAKAO_CLIENT_ID}", "client_id: ''",
		"type: kakao", "type: kakoa",
		"10.0.0.0/8", "10.0.0.0/99",
	).Replace(valid)
	e := goodEnv()
	delete(e, "DATABASE_URL")
	e["BLOCK"] = base64.StdEncoding.EncodeToString([]byte("short"))
	e["ENC"] = "!!!"
	_, err := Parse([]byte(doc), env(e))
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"database.url: required, but ${DATABASE_URL} is not set",
		"cookies.block_key: decodes to 5 bytes, want 32",
		"keys.encryption_key: not valid base64",
		"tokens.access_ttl: not a duration",
		"limits.trusted_proxies[0]",
		"providers[0]",
		"tokens.bogus: unknown key",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestDecodeKeyAlphabets(t *testing.T) {
	raw := []byte{0xfb, 0xff, 0xfe, 0x01, 0x02}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw),
	} {
		got, err := DecodeKey(s)
		if err != nil || string(got) != string(raw) {
			t.Errorf("DecodeKey(%q) = %x, %v; want %x", s, got, err, raw)
		}
	}
}

func TestEmptyAndBrokenFiles(t *testing.T) {
	if _, err := Parse([]byte(""), env(nil)); err == nil {
		t.Error("empty file accepted")
	}
	if _, err := Parse([]byte("issuer: [unclosed"), env(nil)); err == nil {
		t.Error("broken YAML accepted")
	}
}

// Settings that quietly weaken the broker are refused, each naming its
// key; the same settings in their safe form are accepted.
func TestSecurityFootGuns(t *testing.T) {
	for name, tc := range map[string]struct{ from, to, want string }{
		"issuer with a path":       {"issuer: https://auth.example.com/", "issuer: https://example.com/auth", "issuer: must be an origin without a path"},
		"insecure cookies, https":  {"database:", "cookies:\n  secure: false\ndatabase:", "cookies.secure: must not be false with an https issuer"},
		"admin on the public port": {"database:", "admin:\n  listen: 127.0.0.1:8080\ndatabase:", "admin.listen: must differ from listen"},
		"admin not host:port":      {"database:", "admin:\n  listen: nope\ndatabase:", "admin.listen: must be host:port"},
		"one client twice":         {"    scopes: [profile_nickname]\n", "    scopes: [profile_nickname]\n  - name: kakao2\n    type: kakao\n    client_id: rest-key\n", "providers[1].client_id: the same provider and client_id as providers[0]"},
	} {
		doc := strings.Replace(valid, tc.from, tc.to, 1)
		if strings.Count(doc, "cookies:") > 1 { // merge into the one cookies block
			doc = strings.Replace(strings.Replace(doc, "cookies:\n  secure: false\n", "", 1), "cookies:\n", "cookies:\n  secure: false\n", 1)
		}
		_, err := Parse([]byte(doc), env(goodEnv()))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	for name, doc := range map[string]string{
		"insecure cookies, http issuer": strings.Replace(strings.Replace(valid, "https://auth.example.com/", "http://127.0.0.1:8080", 1), "cookies:\n", "cookies:\n  secure: false\n", 1),
		"admin listener":                strings.Replace(valid, "database:", "admin:\n  listen: 127.0.0.1:8081\ndatabase:", 1),
		"one client id, two issuers": strings.Replace(valid, "    scopes: [profile_nickname]\n",
			"    scopes: [profile_nickname]\n  - name: acme\n    type: oidc\n    issuer: https://id.acme.example\n    client_id: rest-key\n", 1),
	} {
		if _, err := Parse([]byte(doc), env(goodEnv())); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestLogAndDemoSettings(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(valid, "database:", "log:\n  level: debug\n  format: text\ndemo: true\ndatabase:", 1)), env(goodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != slog.LevelDebug || c.Log.Format != "text" || !c.Demo {
		t.Fatalf("log, demo = %+v, %v", c.Log, c.Demo)
	}
	c, err = Parse([]byte(valid), env(goodEnv()))
	if err != nil || c.Log.Level != slog.LevelInfo || c.Log.Format != "json" || c.Demo {
		t.Fatalf("defaults: %+v, %v, %v", c.Log, c.Demo, err)
	}
	_, err = Parse([]byte(strings.Replace(valid, "database:", "log:\n  level: loud\n  format: xml\ndatabase:", 1)), env(goodEnv()))
	if err == nil || !strings.Contains(err.Error(), "log.level") || !strings.Contains(err.Error(), "log.format") {
		t.Fatalf("bad log settings: %v", err)
	}
}

// Lifetimes and rotation that contradict each other are refused; a signup
// field without a label is a warning.
func TestLifetimeChecksAndWarnings(t *testing.T) {
	for name, tc := range map[string]struct{ from, to, want string }{
		"access outlives idle": {"access_ttl: 4s", "access_ttl: 200h", "tokens.access_ttl: must be shorter than tokens.refresh_idle_ttl and tokens.refresh_ttl"},
		"rotation too fast":    {"encryption_key: ${ENC}", "encryption_key: ${ENC}\n  rotate_every: 1m\n  jwks_max_age: 10m", "keys.rotate_every: must be at least"},
	} {
		_, err := Parse([]byte(strings.Replace(valid, tc.from, tc.to, 1)), env(goodEnv()))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	c, err := Parse([]byte(strings.Replace(valid, "redirects:", "signup:\n  fields: [nickname, shoe_size]\nredirects:", 1)), env(goodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `signup.fields[1]: "shoe_size" has no label`) {
		t.Fatalf("warnings = %q", c.Warnings)
	}
}

func TestProfileClaimsChecked(t *testing.T) {
	for claims, want := range map[string]string{
		"[nickname, picture]":  "",
		"[sub]":                `tokens.profile_claims[0]: "sub" is a claim the broker sets itself`,
		"[shoe_size]":          `tokens.profile_claims[0]: "shoe_size" is neither`,
		"[nickname, nickname]": `tokens.profile_claims[1]: duplicate`,
	} {
		_, err := Parse([]byte(strings.Replace(valid, "  audience: [https://api.example.com]", "  audience: [https://api.example.com]\n  profile_claims: "+claims, 1)), env(goodEnv()))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", claims, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: err = %v, want %q", claims, err, want)
		}
	}
}

func TestWebSettingsChecked(t *testing.T) {
	dir := t.TempDir()
	good := "web:\n  templates_dir: " + dir + "\n  logo_url: /static/logo.svg\n  primary_color: \"#0a7d4f\"\n  terms_url: https://x.example/t\ndatabase:"
	c, err := Parse([]byte(strings.Replace(valid, "database:", good, 1)), env(goodEnv()))
	if err != nil || c.Web.TemplatesDir != dir || c.Web.PrimaryColor != "#0a7d4f" {
		t.Fatalf("good web settings: %+v, %v", c, err)
	}
	bad := "web:\n  templates_dir: /nonexistent-dir\n  logo_url: https://cdn.example/logo.png\n  primary_color: red\n  privacy_url: javascript:alert(1)\ndatabase:"
	_, err = Parse([]byte(strings.Replace(valid, "database:", bad, 1)), env(goodEnv()))
	for _, want := range []string{"web.templates_dir", "web.logo_url", "web.primary_color", "web.privacy_url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad web settings: err = %v, want %s named", err, want)
		}
	}
}
