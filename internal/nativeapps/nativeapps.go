// Package nativeapps holds the native apps registered in config
// (native_apps) and decides whether a redirect_uri presented by one of them
// is registered, following OAuth 2.0 for Native Apps (RFC 8252):
//
//   - a private-use URI scheme redirect (§7.1) must use a reverse-DNS scheme
//     (it contains a dot, like com.example.app) followed by ":/" and a path
//     (a single slash: there is no authority); it matches exactly;
//   - an https redirect (a claimed URL, §7.2: iOS universal links, Android
//     App Links) matches exactly;
//   - a loopback redirect (§7.3) is http://127.0.0.1/path or
//     http://[::1]/path, registered without a port, and matches that path on
//     any port. "localhost" is refused (§8.3: it may resolve elsewhere).
//
// No redirect URI has a fragment (RFC 6749 §3.1.2). A presented URI must be
// spelled exactly as registered (apart from a loopback port): no extra
// query, no fragment, no other case or escaping.
package nativeapps

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Entry is one native_apps item as written in config.
type Entry struct {
	ClientID     string   `yaml:"client_id"`
	RedirectURIs []string `yaml:"redirect_uris"`
}

// Registry is the validated native_apps list.
type Registry struct {
	apps map[string][]redirect
}

type redirect struct {
	raw      string
	loopback bool
	host     string // loopback: 127.0.0.1 or [::1]
	rest     string // loopback: path and query after the authority
}

// MaxClientID and MaxRedirectURI bound what a login start may carry (it
// is sealed into the flow cookie).
const (
	MaxClientID    = 128
	MaxRedirectURI = 512
)

var (
	clientIDRE = regexp.MustCompile(`^[A-Za-z0-9._:\-]+$`)
	// RFC 3986 scheme, lowercase only so that exact matching is exact.
	schemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.\-]*$`)
)

// Problem is one invalid key of native_apps.
type Problem struct {
	Key, Message string
}

// New validates entries. Problems name their key as
// native_apps[i].client_id or native_apps[i].redirect_uris[j].
func New(entries []Entry) (*Registry, []Problem) {
	reg := &Registry{apps: map[string][]redirect{}}
	var probs []Problem
	add := func(key, format string, args ...any) {
		probs = append(probs, Problem{key, fmt.Sprintf(format, args...)})
	}
	for i, e := range entries {
		k := fmt.Sprintf("native_apps[%d]", i)
		switch {
		case e.ClientID == "":
			add(k+".client_id", "required")
		case len(e.ClientID) > MaxClientID || !clientIDRE.MatchString(e.ClientID):
			add(k+".client_id", "must be 1-%d letters, digits, '.', '_', ':' or '-', got %q", MaxClientID, e.ClientID)
		case reg.apps[e.ClientID] != nil:
			add(k+".client_id", "duplicate client_id %q", e.ClientID)
		}
		if len(e.RedirectURIs) == 0 {
			add(k+".redirect_uris", "required: at least one redirect URI")
		}
		var rs []redirect
		seen := map[string]bool{}
		for j, raw := range e.RedirectURIs {
			rk := fmt.Sprintf("%s.redirect_uris[%d]", k, j)
			r, err := parseRegistered(raw)
			if err != nil {
				add(rk, "%v", err)
				continue
			}
			if seen[raw] {
				add(rk, "duplicate redirect URI %q", raw)
			}
			seen[raw] = true
			rs = append(rs, r)
		}
		if e.ClientID != "" && reg.apps[e.ClientID] == nil {
			reg.apps[e.ClientID] = append([]redirect{}, rs...)
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return reg, nil
}

// parseRegistered checks one registered redirect URI.
func parseRegistered(raw string) (redirect, error) {
	if raw == "" {
		return redirect{}, errors.New("must not be empty")
	}
	if len(raw) > MaxRedirectURI-len(":65535") {
		return redirect{}, fmt.Errorf("longer than %d bytes", MaxRedirectURI-len(":65535"))
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return redirect{}, fmt.Errorf("must be plain ASCII without spaces or backslashes, got %q", raw)
		}
	}
	if strings.Contains(raw, "#") {
		return redirect{}, fmt.Errorf("must not have a fragment (RFC 6749 §3.1.2), got %q", raw)
	}
	colon := strings.IndexByte(raw, ':')
	if colon <= 0 {
		return redirect{}, fmt.Errorf("must be an absolute URI (a scheme, then ':'), got %q", raw)
	}
	scheme, rest := raw[:colon], raw[colon+1:]
	if !schemeRE.MatchString(scheme) {
		return redirect{}, fmt.Errorf("scheme %q must be lowercase letters, digits, '+', '.' or '-', starting with a letter", scheme)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redirect{}, fmt.Errorf("not a URI: %v", err)
	}
	if u.User != nil {
		return redirect{}, fmt.Errorf("must not have user info, got %q", raw)
	}
	switch scheme {
	case "https":
		if !strings.HasPrefix(rest, "//") || u.Host == "" || u.Hostname() == "" {
			return redirect{}, fmt.Errorf("an https redirect must be an absolute URL like https://app.example.com/native/callback, got %q", raw)
		}
		if u.Host != strings.ToLower(u.Host) {
			return redirect{}, fmt.Errorf("write the host in lowercase, got %q", raw)
		}
		if isLoopbackName(u.Hostname()) {
			return redirect{}, fmt.Errorf("a loopback redirect uses http, not https (RFC 8252 §7.3), got %q", raw)
		}
		return redirect{raw: raw}, nil
	case "http":
		host := u.Host
		switch {
		case !strings.HasPrefix(rest, "//"):
			return redirect{}, fmt.Errorf("an http redirect must be a loopback URL like http://127.0.0.1/callback, got %q", raw)
		case strings.EqualFold(u.Hostname(), "localhost"):
			return redirect{}, fmt.Errorf("use http://127.0.0.1/… or http://[::1]/… instead of localhost (RFC 8252 §8.3), got %q", raw)
		case u.Port() != "" || strings.HasSuffix(host, ":"):
			return redirect{}, fmt.Errorf("register a loopback redirect without a port: any port matches (RFC 8252 §7.3), got %q", raw)
		case host != "127.0.0.1" && host != "[::1]":
			return redirect{}, fmt.Errorf("plain http is allowed only for the loopback addresses 127.0.0.1 and [::1] (RFC 8252 §7.3); use https otherwise, got %q", raw)
		}
		after := rest[2+len(host):]
		if after == "" {
			after = "/"
		}
		if !strings.HasPrefix(after, "/") {
			return redirect{}, fmt.Errorf("not a loopback URL with a path, got %q", raw)
		}
		return redirect{raw: raw, loopback: true, host: host, rest: after}, nil
	}
	// A private-use scheme (§7.1).
	if !strings.Contains(scheme, ".") {
		return redirect{}, fmt.Errorf("a private-use scheme must be the reverse-DNS form of a domain the app controls, like com.example.app (RFC 8252 §7.1), got %q", scheme)
	}
	if strings.HasPrefix(rest, "//") || !strings.HasPrefix(rest, "/") {
		return redirect{}, fmt.Errorf("a private-use scheme redirect has a single slash after the scheme, like %s:/oauth2redirect (RFC 8252 §7.1), got %q", scheme, raw)
	}
	return redirect{raw: raw}, nil
}

func isLoopbackName(h string) bool {
	h = strings.ToLower(h)
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// Known reports whether clientID is registered.
func (r *Registry) Known(clientID string) bool {
	if r == nil {
		return false
	}
	_, ok := r.apps[clientID]
	return ok
}

// Match reports whether redirectURI is one registered for clientID, spelled
// exactly as registered except for a loopback redirect's port.
func (r *Registry) Match(clientID, redirectURI string) bool {
	if r == nil || len(redirectURI) > MaxRedirectURI {
		return false
	}
	for _, reg := range r.apps[clientID] {
		if reg.matches(redirectURI) {
			return true
		}
	}
	return false
}

func (reg redirect) matches(s string) bool {
	if s == reg.raw {
		return true
	}
	if !reg.loopback {
		return false
	}
	rest, ok := strings.CutPrefix(s, "http://"+reg.host)
	if !ok {
		return false
	}
	if rest == "" { // http://127.0.0.1 registered as http://127.0.0.1/
		rest = "/"
	}
	if rest[0] == ':' {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			i = len(rest)
		}
		port := rest[1:i]
		if !validPort(port) {
			return false
		}
		rest = rest[i:]
		if rest == "" {
			rest = "/"
		}
	}
	return rest == reg.rest
}

// validPort is 1-65535 in plain decimal without leading zeros.
func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

// Len is the number of registered apps.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	return len(r.apps)
}
