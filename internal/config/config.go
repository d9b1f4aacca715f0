// Package config loads and validates the broker's YAML configuration.
//
// Loading expands ${VAR} from the environment inside scalar values (never
// in keys, so a value cannot change the document's structure), refuses
// unknown keys, parses durations and base64 keys, and reports every
// problem at once, each naming its key.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/socialbroker/broker/internal/nativeapps"
	"github.com/socialbroker/broker/internal/returnto"
	"github.com/socialbroker/broker/internal/web"
	"github.com/socialbroker/broker/providers"
)

// Config is the validated configuration.
type Config struct {
	Issuer    string
	Listen    string
	Database  Database
	Cookies   Cookies
	Tokens    Tokens
	Keys      Keys
	Redirects *returnto.Policy
	CORS      CORS
	Limits    Limits
	Signup    Signup
	Admin     Admin
	Events    Events
	Audit     Audit
	Shutdown  Shutdown
	Log       Log
	Web       Web
	Demo      bool // serve the demo frontend at /demo/
	Providers []providers.Config
	// NativeApps are the apps signing in through the system browser
	// (RFC 8252); nil when none is configured.
	NativeApps *nativeapps.Registry

	// Warnings are settings that work but are likely mistakes; serve logs
	// each at start.
	Warnings []string
}

// Web brands the pages: web.Options of internal/web.
type Web struct {
	TemplatesDir, StaticDir                                  string
	ProductName, LogoURL, PrimaryColor, TermsURL, PrivacyURL string
}

// Log is how the broker writes its log.
type Log struct {
	Level  slog.Level // debug, info (default), warn, error
	Format string     // json (default) or text
}

// Shutdown is what serve does on SIGTERM.
type Shutdown struct {
	Drain time.Duration // /readyz answers 503 and serving goes on this long before in-flight requests are finished; default 5s, 0 allowed
}

// Events are the product's webhook receivers (Standard Webhooks).
type Events struct {
	Endpoints []EventEndpoint
	Retry     []time.Duration // delays between attempts; after the last, an event is given up
}

// EventEndpoint is one receiver.
type EventEndpoint struct {
	URL    string
	Secret []byte   // the decoded part of whsec_…
	Types  []string // nil: every type
}

// EventTypes are the event types the broker sends.
var EventTypes = []string{
	"user.created", "user.deleted", "user.disabled", "user.enabled",
	"identity.linked", "identity.unlinked", "session.revoked",
}

// DefaultEventRetry is events.retry's default.
var DefaultEventRetry = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// Audit is the audit log's retention.
type Audit struct {
	Retention time.Duration
}

// Admin is the operators' listener.
type Admin struct {
	Listen string // host:port serving /metrics (and the admin API); "" = none, /metrics on the public listener
}

type Database struct {
	URL         string
	AutoMigrate bool
	MaxConns    int32
}

type Cookies struct {
	HashKey  []byte
	BlockKey []byte
	Secure   bool
}

type Tokens struct {
	AccessTTL      time.Duration
	RefreshTTL     time.Duration
	RefreshIdleTTL time.Duration
	ReuseGrace     time.Duration
	Audience       []string
	ProfileClaims  []string // profile fields copied into access tokens
}

type Keys struct {
	EncryptionKey []byte
	RotateEvery   time.Duration
	JWKSMaxAge    time.Duration
}

type CORS struct {
	AllowedOrigins []string
}

type Limits struct {
	Login, Callback, Token int // per client address per minute; 0 = off
	TrustedProxies         []netip.Prefix
}

type Signup struct {
	Mode   string // form | auto
	Fields []string
	Terms  []Term // shown on the signup form as checkboxes, in this order
}

// Term is one entry of signup.terms: a tag (also the checkbox value and
// what Kakao Sync calls it), whether signing up needs it, and where to read
// it.
type Term struct {
	Tag      string
	Required bool
	URL      string
}

// file mirrors the YAML document. Scalars stay strings until validation so
// that every problem can be reported with its key.
type file struct {
	Issuer   string `yaml:"issuer"`
	Listen   string `yaml:"listen"`
	Database struct {
		URL         string `yaml:"url"`
		AutoMigrate *bool  `yaml:"auto_migrate"`
		MaxConns    int32  `yaml:"max_conns"`
	} `yaml:"database"`
	Cookies struct {
		HashKey  string `yaml:"hash_key"`
		BlockKey string `yaml:"block_key"`
		Secure   *bool  `yaml:"secure"`
	} `yaml:"cookies"`
	Tokens struct {
		AccessTTL      string   `yaml:"access_ttl"`
		RefreshTTL     string   `yaml:"refresh_ttl"`
		RefreshIdleTTL string   `yaml:"refresh_idle_ttl"`
		ReuseGrace     string   `yaml:"reuse_grace"`
		Audience       []string `yaml:"audience"`
		ProfileClaims  []string `yaml:"profile_claims"`
	} `yaml:"tokens"`
	Keys struct {
		EncryptionKey string `yaml:"encryption_key"`
		RotateEvery   string `yaml:"rotate_every"`
		JWKSMaxAge    string `yaml:"jwks_max_age"`
	} `yaml:"keys"`
	Redirects struct {
		Allowed []string `yaml:"allowed"`
		Default string   `yaml:"default"`
	} `yaml:"redirects"`
	CORS struct {
		AllowedOrigins []string `yaml:"allowed_origins"`
	} `yaml:"cors"`
	Limits struct {
		PerMinute struct {
			Login    *int `yaml:"login"`
			Callback *int `yaml:"callback"`
			Token    *int `yaml:"token"`
		} `yaml:"per_minute"`
		TrustedProxies []string `yaml:"trusted_proxies"`
	} `yaml:"limits"`
	Signup struct {
		Mode   string   `yaml:"mode"`
		Fields []string `yaml:"fields"`
		Terms  []struct {
			Tag      string `yaml:"tag"`
			Required bool   `yaml:"required"`
			URL      string `yaml:"url"`
		} `yaml:"terms"`
	} `yaml:"signup"`
	Admin struct {
		Listen string `yaml:"listen"`
	} `yaml:"admin"`
	Events struct {
		Endpoints []struct {
			URL    string   `yaml:"url"`
			Secret string   `yaml:"secret"`
			Types  []string `yaml:"types"`
		} `yaml:"endpoints"`
		Retry []string `yaml:"retry"`
	} `yaml:"events"`
	Audit struct {
		Retention string `yaml:"retention"`
	} `yaml:"audit"`
	Shutdown struct {
		Drain string `yaml:"drain"`
	} `yaml:"shutdown"`
	Log struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`
	Web struct {
		TemplatesDir string `yaml:"templates_dir"`
		StaticDir    string `yaml:"static_dir"`
		ProductName  string `yaml:"product_name"`
		LogoURL      string `yaml:"logo_url"`
		PrimaryColor string `yaml:"primary_color"`
		TermsURL     string `yaml:"terms_url"`
		PrivacyURL   string `yaml:"privacy_url"`
	} `yaml:"web"`
	Demo       bool               `yaml:"demo"`
	Providers  []providers.Config `yaml:"providers"`
	NativeApps []nativeapps.Entry `yaml:"native_apps"`
}

// Load reads and validates the file at path.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, getenv)
}

// Parse validates a YAML document. The error joins every problem found.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if doc.Kind == 0 {
		return nil, errors.New("config: the file is empty")
	}
	p := &problems{}
	unset := map[string]string{} // key path → unset variable
	expand(&doc, "", getenv, unset)
	checkKeys(&doc, reflect.TypeOf(file{}), "", p)
	var f file
	if err := doc.Decode(&f); err != nil {
		if len(p.list) > 0 { // wrong shapes, already named by key
			return nil, p.err()
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	c := validate(&f, p, unset)
	if len(p.list) > 0 {
		return nil, p.err()
	}
	return c, nil
}

type problems struct{ list []string }

func (p *problems) add(key, format string, args ...any) {
	p.list = append(p.list, key+": "+fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	errs := make([]error, len(p.list))
	for i, s := range p.list {
		errs[i] = errors.New("config: " + s)
	}
	return errors.Join(errs...)
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} in scalar values and records which keys used an
// unset variable, so that "required" errors can say why.
func expand(n *yaml.Node, path string, getenv func(string) string, unset map[string]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expand(c, path, getenv, unset)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expand(n.Content[i+1], join(path, n.Content[i].Value), getenv, unset)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expand(c, fmt.Sprintf("%s[%d]", path, i), getenv, unset)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = varRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := m[2 : len(m)-1]
			v := getenv(name)
			if v == "" {
				unset[path] = name
			}
			return v
		})
		n.Tag = "!!str"
		n.Style = 0
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkKeys reports every mapping key that has no field in t (by yaml tag).
func checkKeys(n *yaml.Node, t reflect.Type, path string, p *problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(selfDecoding) {
		return // it checks its own keys (a provider entry: its preset does)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			checkKeys(c, t, path, p)
		}
	case yaml.MappingNode:
		if t.Kind() == reflect.Map {
			return
		}
		if t.Kind() != reflect.Struct {
			p.add(path, "expected a %s, got a mapping", kindName(t))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			f, ok := fieldByTag(t, key)
			if !ok {
				p.add(join(path, key), "unknown key (line %d)", n.Content[i].Line)
				continue
			}
			checkKeys(n.Content[i+1], f.Type, join(path, key), p)
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			p.add(path, "expected a %s, got a list", kindName(t))
			return
		}
		for i, c := range n.Content {
			checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), p)
		}
	case yaml.ScalarNode:
		if t.Kind() == reflect.Struct || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			if n.Tag == "!!null" {
				return
			}
			p.add(path, "expected a %s, got %q", kindName(t), n.Value)
		}
	}
}

var selfDecoding = reflect.TypeFor[yaml.Unmarshaler]()

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "mapping"
	case reflect.Slice:
		return "list"
	default:
		return "scalar"
	}
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if strings.Split(f.Tag.Get("yaml"), ",")[0] == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func validate(f *file, p *problems, unset map[string]string) *Config {
	c := &Config{}
	required := func(key, v string) bool {
		if v != "" {
			return true
		}
		if name, ok := unset[key]; ok {
			p.add(key, "required, but ${%s} is not set", name)
		} else {
			p.add(key, "required")
		}
		return false
	}

	// issuer
	if required("issuer", f.Issuer) {
		u, err := url.Parse(f.Issuer)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			p.add("issuer", "must be an absolute http(s) URL, got %q", f.Issuer)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			p.add("issuer", "must not have a query, fragment or user info")
		case u.Path != "" && u.Path != "/":
			// The broker's cookies and routes live at the origin's root; under
			// a path the refresh cookie (Path=/auth) would reach other apps.
			p.add("issuer", "must be an origin without a path (like https://auth.example.com), got %q", f.Issuer)
		default:
			c.Issuer = strings.TrimSuffix(f.Issuer, "/")
		}
	}
	c.Listen = orDefault(f.Listen, "127.0.0.1:8080")
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p.add("listen", "must be host:port, got %q", c.Listen)
	}

	// database
	if required("database.url", f.Database.URL) {
		c.Database.URL = f.Database.URL
	}
	c.Database.AutoMigrate = f.Database.AutoMigrate == nil || *f.Database.AutoMigrate
	if f.Database.MaxConns < 0 {
		p.add("database.max_conns", "must not be negative")
	}
	c.Database.MaxConns = f.Database.MaxConns

	// cookies
	c.Cookies.HashKey = key(p, unset, "cookies.hash_key", f.Cookies.HashKey, 32, 64)
	c.Cookies.BlockKey = key(p, unset, "cookies.block_key", f.Cookies.BlockKey, 32)
	c.Cookies.Secure = f.Cookies.Secure == nil || *f.Cookies.Secure
	if !c.Cookies.Secure && strings.HasPrefix(c.Issuer, "https://") {
		p.add("cookies.secure", "must not be false with an https issuer: the refresh token would also travel over plain http")
	}

	// tokens
	c.Tokens.AccessTTL = duration(p, "tokens.access_ttl", f.Tokens.AccessTTL, 10*time.Minute, false)
	c.Tokens.RefreshTTL = duration(p, "tokens.refresh_ttl", f.Tokens.RefreshTTL, 720*time.Hour, false)
	c.Tokens.RefreshIdleTTL = duration(p, "tokens.refresh_idle_ttl", f.Tokens.RefreshIdleTTL, 168*time.Hour, false)
	c.Tokens.ReuseGrace = duration(p, "tokens.reuse_grace", f.Tokens.ReuseGrace, 10*time.Second, true)
	c.Tokens.Audience = f.Tokens.Audience
	for i, a := range c.Tokens.Audience {
		if strings.TrimSpace(a) == "" {
			p.add(fmt.Sprintf("tokens.audience[%d]", i), "must not be blank")
		}
	}
	if len(c.Tokens.Audience) == 0 && c.Issuer != "" {
		c.Tokens.Audience = []string{c.Issuer}
	}

	if c.Tokens.AccessTTL > 0 && (c.Tokens.AccessTTL >= c.Tokens.RefreshIdleTTL || c.Tokens.AccessTTL >= c.Tokens.RefreshTTL) {
		p.add("tokens.access_ttl", "must be shorter than tokens.refresh_idle_ttl and tokens.refresh_ttl (%s, %s, %s)",
			c.Tokens.AccessTTL, c.Tokens.RefreshIdleTTL, c.Tokens.RefreshTTL)
	}

	// keys
	c.Keys.EncryptionKey = key(p, unset, "keys.encryption_key", f.Keys.EncryptionKey, 32)
	c.Keys.RotateEvery = duration(p, "keys.rotate_every", f.Keys.RotateEvery, 720*time.Hour, false)
	c.Keys.JWKSMaxAge = duration(p, "keys.jwks_max_age", f.Keys.JWKSMaxAge, 10*time.Minute, false)
	if min := c.Tokens.AccessTTL + c.Keys.JWKSMaxAge; c.Keys.RotateEvery > 0 && c.Keys.RotateEvery < min {
		p.add("keys.rotate_every", "must be at least tokens.access_ttl + keys.jwks_max_age (%s): a key must sign longer than it takes to publish its successor and to outlive its tokens", min)
	}

	// redirects
	if required("redirects.default", f.Redirects.Default) {
		allowed := f.Redirects.Allowed
		if len(allowed) == 0 {
			p.add("redirects.allowed", "required: at least one allowed return_to prefix")
		} else if pol, err := returnto.New(allowed, f.Redirects.Default); err != nil {
			p.add("redirects", "%v", err)
		} else {
			c.Redirects = pol
		}
	}

	// cors
	for i, o := range f.CORS.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			p.add(fmt.Sprintf("cors.allowed_origins[%d]", i), "must be an origin like https://app.example.com, got %q", o)
			continue
		}
		c.CORS.AllowedOrigins = append(c.CORS.AllowedOrigins, strings.ToLower(u.Scheme+"://"+u.Host))
	}

	// limits
	c.Limits.Login = limit(p, "limits.per_minute.login", f.Limits.PerMinute.Login, 30)
	c.Limits.Callback = limit(p, "limits.per_minute.callback", f.Limits.PerMinute.Callback, 30)
	c.Limits.Token = limit(p, "limits.per_minute.token", f.Limits.PerMinute.Token, 120)
	for i, s := range f.Limits.TrustedProxies {
		pref, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil {
				p.add(fmt.Sprintf("limits.trusted_proxies[%d]", i), "must be a CIDR or an IP address, got %q", s)
				continue
			}
			pref = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.Limits.TrustedProxies = append(c.Limits.TrustedProxies, pref.Masked())
	}

	// admin
	c.Admin.Listen = f.Admin.Listen
	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			p.add("admin.listen", "must be host:port, got %q", c.Admin.Listen)
		} else if c.Admin.Listen == c.Listen {
			p.add("admin.listen", "must differ from listen")
		}
	}

	// events
	validateEvents(f, c, p, unset)
	c.Audit.Retention = duration(p, "audit.retention", f.Audit.Retention, 2160*time.Hour, false)
	// log
	switch lv := strings.ToLower(f.Log.Level); lv {
	case "", "info":
		c.Log.Level = slog.LevelInfo
	case "debug":
		c.Log.Level = slog.LevelDebug
	case "warn":
		c.Log.Level = slog.LevelWarn
	case "error":
		c.Log.Level = slog.LevelError
	default:
		p.add("log.level", "must be debug, info, warn or error, got %q", f.Log.Level)
	}
	c.Log.Format = orDefault(f.Log.Format, "json")
	if c.Log.Format != "json" && c.Log.Format != "text" {
		p.add("log.format", "must be json or text, got %q", f.Log.Format)
	}
	c.Demo = f.Demo
	validateWeb(f, c, p)

	// shutdown
	c.Shutdown.Drain = duration(p, "shutdown.drain", f.Shutdown.Drain, 5*time.Second, true)

	// signup
	c.Signup.Mode = orDefault(f.Signup.Mode, "form")
	if c.Signup.Mode != "form" && c.Signup.Mode != "auto" {
		p.add("signup.mode", "must be form or auto, got %q", c.Signup.Mode)
	}
	seen := map[string]bool{}
	for i, name := range f.Signup.Fields {
		key := fmt.Sprintf("signup.fields[%d]", i)
		switch {
		case !fieldName.MatchString(name):
			p.add(key, "must be a lowercase name like nickname, got %q", name)
		case name == "csrf_token" || name == "terms" || name == "agree_all":
			p.add(key, "%s is reserved", name)
		case seen[name]:
			p.add(key, "duplicate field %q", name)
		}
		seen[name] = true
	}
	c.Signup.Fields = f.Signup.Fields
	// tokens.profile_claims: profile fields (from the signup form or the
	// provider) that access tokens carry; never a claim the broker sets.
	for i, name := range f.Tokens.ProfileClaims {
		key := fmt.Sprintf("tokens.profile_claims[%d]", i)
		switch {
		case reservedClaims[name]:
			p.add(key, "%q is a claim the broker sets itself", name)
		case !slices.Contains(f.Signup.Fields, name) && !providerProfileFields[name]:
			p.add(key, "%q is neither a signup.fields name nor a provider profile field (nickname, picture)", name)
		case slices.Contains(f.Tokens.ProfileClaims[:i], name):
			p.add(key, "duplicate %q", name)
		}
	}
	c.Tokens.ProfileClaims = f.Tokens.ProfileClaims
	for i, name := range f.Signup.Fields {
		if fieldName.MatchString(name) && !web.HasFieldLabel(name) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("signup.fields[%d]: %q has no label of its own; the form shows the name itself", i, name))
		}
	}
	validateTerms(f, c, p)

	// providers: each entry decoded and validated by its preset, which names keys as providers[i].field
	if len(f.Providers) == 0 {
		p.add("providers", "required: at least one provider")
	}
	if err := providers.Validate(f.Providers, c.Issuer); err != nil {
		for _, e := range unjoin(err) {
			p.list = append(p.list, e.Error())
		}
	}
	c.Providers = f.Providers

	// native_apps
	if len(f.NativeApps) > 0 {
		reg, probs := nativeapps.New(f.NativeApps)
		for _, pr := range probs {
			p.add(pr.Key, "%s", pr.Message)
		}
		c.NativeApps = reg
	}
	return c
}

// termTag is a signup.terms tag: what the form's checkbox carries and what
// Kakao Sync's service_terms name.
var termTag = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// validateTerms checks signup.terms, and that every Kakao Sync tag a
// provider asks for (service_terms) is one of them: the form could not ask
// for it otherwise, nor the broker record it.
func validateTerms(f *file, c *Config, p *problems) {
	seen := map[string]bool{}
	for i, t := range f.Signup.Terms {
		key := fmt.Sprintf("signup.terms[%d]", i)
		switch {
		case !termTag.MatchString(t.Tag):
			p.add(key+".tag", "must be 1-64 of a-z, 0-9 and _, got %q", t.Tag)
		case seen[t.Tag]:
			p.add(key+".tag", "duplicate tag %q", t.Tag)
		}
		seen[t.Tag] = true
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add(key+".url", "must be an absolute http(s) URL, got %q", t.URL)
		}
		c.Signup.Terms = append(c.Signup.Terms, Term{Tag: t.Tag, Required: t.Required, URL: t.URL})
	}
	for i, pc := range f.Providers {
		tags, _ := pc.Map()["service_terms"].([]any)
		for j, t := range tags {
			if s, ok := t.(string); ok && termTag.MatchString(s) && !seen[s] {
				p.add(fmt.Sprintf("providers[%d].service_terms[%d]", i, j), "tag %q is not in signup.terms", s)
			}
		}
	}
}

var hexColor = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

func validateWeb(f *file, c *Config, p *problems) {
	w := f.Web
	for key, dir := range map[string]string{"web.templates_dir": w.TemplatesDir, "web.static_dir": w.StaticDir} {
		if dir == "" {
			continue
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			p.add(key, "%q is not a readable directory", dir)
		}
	}
	if len(w.ProductName) > 64 || strings.ContainsAny(w.ProductName, "\x00\r\n\t") {
		p.add("web.product_name", "must be one line of at most 64 bytes")
	}
	// The CSP lets pages load images from their own origin only.
	if w.LogoURL != "" && (!strings.HasPrefix(w.LogoURL, "/") || strings.HasPrefix(w.LogoURL, "//") || strings.ContainsAny(w.LogoURL, "\\ \"'<>")) {
		p.add("web.logo_url", "must be a path on the broker's own origin, like /static/logo.svg (the pages' CSP loads no other images), got %q", w.LogoURL)
	}
	if w.PrimaryColor != "" && !hexColor.MatchString(w.PrimaryColor) {
		p.add("web.primary_color", "must be a #rgb or #rrggbb colour, got %q", w.PrimaryColor)
	}
	for key, v := range map[string]string{"web.terms_url": w.TermsURL, "web.privacy_url": w.PrivacyURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			p.add(key, "must be an absolute http(s) URL, got %q", v)
		}
	}
	c.Web = Web{TemplatesDir: w.TemplatesDir, StaticDir: w.StaticDir, ProductName: w.ProductName, LogoURL: w.LogoURL,
		PrimaryColor: w.PrimaryColor, TermsURL: w.TermsURL, PrivacyURL: w.PrivacyURL}
}

func validateEvents(f *file, c *Config, p *problems, unset map[string]string) {
	seen := map[string]bool{}
	for i, e := range f.Events.Endpoints {
		k := fmt.Sprintf("events.endpoints[%d]", i)
		ep := EventEndpoint{URL: e.URL}
		u, err := url.Parse(e.URL)
		switch {
		case e.URL == "":
			p.add(k+".url", "required")
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "":
			p.add(k+".url", "must be an absolute http(s) URL without user info or fragment, got %q", e.URL)
		case seen[e.URL]:
			p.add(k+".url", "duplicate endpoint %q", e.URL)
		}
		seen[e.URL] = true
		raw, ok := strings.CutPrefix(e.Secret, "whsec_")
		secret, derr := base64.StdEncoding.DecodeString(raw)
		switch {
		case e.Secret == "":
			if name, ok := unset[k+".secret"]; ok {
				p.add(k+".secret", "required, but ${%s} is not set", name)
			} else {
				p.add(k+".secret", "required")
			}
		case !ok || derr != nil || len(secret) < 24 || len(secret) > 64:
			p.add(k+".secret", "must be whsec_ followed by the base64 of 24 to 64 random bytes")
		default:
			ep.Secret = secret
		}
		for j, t := range e.Types {
			if !slices.Contains(EventTypes, t) {
				p.add(fmt.Sprintf("%s.types[%d]", k, j), "unknown event type %q (known: %s)", t, strings.Join(EventTypes, ", "))
			}
		}
		ep.Types = e.Types
		c.Events.Endpoints = append(c.Events.Endpoints, ep)
	}
	c.Events.Retry = DefaultEventRetry
	if f.Events.Retry != nil {
		c.Events.Retry = nil
		for i, v := range f.Events.Retry {
			c.Events.Retry = append(c.Events.Retry, duration(p, fmt.Sprintf("events.retry[%d]", i), v, 0, false))
		}
	}
}

// reservedClaims are the claims of every access token (contract §5) and
// the JWT header-ish names a profile claim must not shadow.
var reservedClaims = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true,
	"jti": true, "sid": true, "idp": true, "typ": true, "alg": true, "kid": true, "scope": true, "client_id": true}

// providerProfileFields are the profile fields the broker fills from a
// provider.
var providerProfileFields = map[string]bool{"nickname": true, "picture": true}

var fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func duration(p *problems, key, v string, def time.Duration, zeroOK bool) time.Duration {
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.add(key, "not a duration like 10m or 720h: %q", v)
	case d < 0 || (d == 0 && !zeroOK):
		p.add(key, "must be positive, got %s", v)
	}
	return d
}

func limit(p *problems, key string, v *int, def int) int {
	if v == nil {
		return def
	}
	if *v < 0 {
		p.add(key, "must be 0 (off) or positive, got %d", *v)
	}
	return *v
}

// key decodes a base64 key (standard or URL-safe alphabet, padded or not)
// and checks its length.
func key(p *problems, unset map[string]string, name, v string, sizes ...int) []byte {
	if v == "" {
		if env, ok := unset[name]; ok {
			p.add(name, "required, but ${%s} is not set", env)
		} else {
			p.add(name, "required")
		}
		return nil
	}
	b, err := DecodeKey(v)
	if err != nil {
		p.add(name, "not valid base64")
		return nil
	}
	for _, n := range sizes {
		if len(b) == n {
			return b
		}
	}
	want := fmt.Sprint(sizes[0])
	if len(sizes) == 2 {
		want = fmt.Sprintf("%d or %d", sizes[0], sizes[1])
	}
	p.add(name, "decodes to %d bytes, want %s", len(b), want)
	return nil
}

// DecodeKey decodes base64 in the standard or URL-safe alphabet, with or
// without padding.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
