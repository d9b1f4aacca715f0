package providers

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is one entry of the config file's `providers:` list as written.
// The preset named by its type decodes it strictly into its own typed
// config (an unknown key is an error naming its path) and validates it.
type Config struct {
	node yaml.Node
}

// UnmarshalYAML keeps the entry for its preset.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	c.node = *n
	return nil
}

// ConfigOf is the entry m would be in YAML, e.g.
// ConfigOf(map[string]any{"name": "kakao", "type": "kakao", "client_id": "…"}).
func ConfigOf(m map[string]any) Config {
	var c Config
	if err := c.node.Encode(m); err != nil {
		panic("providers: ConfigOf: " + err.Error())
	}
	return c
}

// Map returns the entry's keys and values as written.
func (c Config) Map() map[string]any {
	m := map[string]any{}
	_ = c.node.Decode(&m)
	return m
}

// ConfigError is one problem in the providers config. NewRegistry and
// Validate return all of them joined (errors.Join); use errors.As on each to
// read Key.
type ConfigError struct {
	Key string // e.g. providers[2].client_id
	Msg string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Msg }

// A preset is one provider type: its typed config, its defaults, and the
// provider it builds. Each preset file registers itself.
type preset struct {
	config      func() presetConfig // a fresh typed config to decode into
	displayName string              // the default label ("": the name, capitalised)
	pkce        bool                // the PKCE default (`pkce:` overrides it)
}

// presetConfig is a preset's typed config.
type presetConfig interface {
	settings() *Common
	// check reports the preset's own problems (the shared ones are checked
	// by the registry).
	check(c checker)
	// build makes the provider; the config has passed check.
	build(b *base) Provider
}

// presets maps a type to its preset: the only place types are looked up.
var presets = map[string]preset{}

func register(typ string, p preset) { presets[typ] = p }

// typeNames lists the registered types for messages.
func typeNames() string {
	names := slices.Sorted(maps.Keys(presets))
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Common are the settings of every preset.
type Common struct {
	Name            string   `yaml:"name"`
	Type            string   `yaml:"type"`
	ClientID        string   `yaml:"client_id"`
	ClientSecret    string   `yaml:"client_secret"`
	Scopes          []string `yaml:"scopes"`
	DisplayName     string   `yaml:"display_name"`
	AcceptAudiences []string `yaml:"accept_audiences"` // extra id_token audiences
	PKCE            *bool    `yaml:"pkce"`             // overrides the preset's default
}

func (c *Common) settings() *Common { return c }

// Endpoints are the OAuth2 endpoint overrides; empty means the preset's
// production endpoint.
type Endpoints struct {
	AuthURL     string `yaml:"auth_url"`
	TokenURL    string `yaml:"token_url"`
	UserinfoURL string `yaml:"userinfo_url"`
	RevokeURL   string `yaml:"revoke_url"`
}

func (e *Endpoints) checkURLs(c checker) {
	c.urls("auth_url", e.AuthURL, "token_url", e.TokenURL, "userinfo_url", e.UserinfoURL, "revoke_url", e.RevokeURL)
}

// IDTokenEndpoints are the overrides of presets that verify id_tokens.
type IDTokenEndpoints struct {
	Issuer  string `yaml:"issuer"`
	JWKSURL string `yaml:"jwks_url"`
}

func (e *IDTokenEndpoints) checkURLs(c checker) {
	c.urls("issuer", e.Issuer, "jwks_url", e.JWKSURL)
}

// checker collects the problems of one entry, each keyed providers[i].field.
type checker struct {
	prefix string
	errs   *[]error
}

func (c checker) add(field, format string, args ...any) {
	*c.errs = append(*c.errs, &ConfigError{Key: c.prefix + field, Msg: fmt.Sprintf(format, args...)})
}

// urls checks pairs of field name and value; empty values are not set.
func (c checker) urls(pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			if err := checkURL(pairs[i+1]); err != nil {
				c.add(pairs[i], "%v", err)
			}
		}
	}
}

// required reports each named field whose value is empty.
func (c checker) required(why string, pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			c.add(pairs[i], "required for %s", why)
		}
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Validate decodes and checks every entry, reporting every problem at once
// (see ConfigError). It builds nothing and makes no network call.
func Validate(cfgs []Config, redirectBase string) error {
	_, err := decodeAll(cfgs, redirectBase)
	return err
}

// decodeAll decodes every entry with its preset.
func decodeAll(cfgs []Config, redirectBase string) ([]presetConfig, error) {
	var errs []error
	if err := checkURL(redirectBase); err != nil {
		errs = append(errs, &ConfigError{Key: "issuer", Msg: fmt.Sprintf("redirect base %v", err)})
	}
	out := make([]presetConfig, len(cfgs))
	seen := map[string]int{}
	sameClient := map[string]int{} // type, issuer or auth_url, client_id → entry
	for i, cfg := range cfgs {
		c := checker{prefix: "providers[" + strconv.Itoa(i) + "].", errs: &errs}
		pc := decodeOne(cfg, c)
		s := pc.settings()
		switch {
		case s.Name == "":
			c.add("name", "required")
		case !nameRE.MatchString(s.Name):
			c.add("name", "%q must match %s", s.Name, nameRE)
		default:
			if j, dup := seen[s.Name]; dup {
				c.add("name", "duplicate name %q (also providers[%d])", s.Name, j)
			} else {
				seen[s.Name] = i
			}
		}
		if strings.TrimSpace(s.ClientID) == "" {
			c.add("client_id", "required")
		}
		for j, sc := range s.Scopes {
			if sc == "" || strings.ContainsAny(sc, " ,\t\r\n") {
				c.add("scopes["+strconv.Itoa(j)+"]", "%q is not a single scope", sc)
			}
		}
		for j, a := range s.AcceptAudiences {
			if strings.TrimSpace(a) == "" {
				c.add("accept_audiences["+strconv.Itoa(j)+"]", "empty audience")
			}
		}
		pc.check(c)
		out[i] = pc
		// Two entries for one client of one provider: a login through either
		// would map to different identities ((name, subject) differs), and
		// id_tokens of one would be accepted by the other.
		who := s.Type + "\x00" + firstOf(entryValue(cfg, "issuer"), entryValue(cfg, "auth_url")) + "\x00" + s.ClientID
		if j, dup := sameClient[who]; dup && s.ClientID != "" {
			c.add("client_id", "the same provider and client_id as providers[%d]", j)
		} else {
			sameClient[who] = i
		}
	}
	return out, errors.Join(errs...)
}

// entryValue is the scalar value of key in a provider entry ("" when absent).
func entryValue(cfg Config, key string) string {
	n := &cfg.node
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return strings.TrimSuffix(n.Content[i+1].Value, "/")
		}
	}
	return ""
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// unknownType stands in for an entry whose type has no preset: only the
// shared settings are read, so that their problems are reported too.
type unknownType struct {
	Common `yaml:",inline"`
}

func (*unknownType) check(checker)        {}
func (*unknownType) build(*base) Provider { return nil }

// decodeOne decodes one entry into its preset's typed config.
func decodeOne(cfg Config, c checker) presetConfig {
	n := &cfg.node
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		c.add("", "expected a mapping")
		return &unknownType{}
	}
	typ := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" {
			typ = n.Content[i+1].Value
		}
	}
	p, ok := presets[typ]
	var pc presetConfig = &unknownType{}
	switch {
	case typ == "":
		c.add("type", "required (%s)", typeNames())
	case !ok:
		c.add("type", "unknown type %q (want %s)", typ, typeNames())
	default:
		pc = p.config()
		unknownKeys(n, reflect.TypeOf(pc).Elem(), strings.TrimSuffix(c.prefix, "."), typ, c)
	}
	if err := n.Decode(pc); err != nil {
		c.add("", "%v", err)
	}
	return pc
}

// unknownKeys reports every mapping key that has no field in t (by yaml
// tag, through inline structs); maps accept any key.
func unknownKeys(n *yaml.Node, t reflect.Type, path, typ string, c checker) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		f, ok := yamlField(t, k.Value)
		if !ok {
			msg := "unknown key for type " + typ
			if k.Line > 0 {
				msg += fmt.Sprintf(" (line %d)", k.Line)
			}
			*c.errs = append(*c.errs, &ConfigError{Key: path + "." + k.Value, Msg: msg})
			continue
		}
		unknownKeys(n.Content[i+1], f.Type, path+"."+k.Value, typ, c)
	}
}

// yamlField finds the field tagged key, looking into inline structs.
func yamlField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" || (f.Anonymous && name == "") {
			if g, ok := yamlField(f.Type, key); ok {
				return g, true
			}
			continue
		}
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
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
