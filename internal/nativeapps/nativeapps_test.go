package nativeapps

import (
	"strings"
	"testing"
)

func TestRegisteredRedirects(t *testing.T) {
	good := []string{
		"com.example.app:/oauth2redirect",
		"com.example.app:/",
		"kr.co.example.my-app:/cb/naver",
		"https://app.example.com/native/callback",
		"https://app.example.com:8443/cb?app=ios",
		"http://127.0.0.1/callback",
		"http://[::1]/callback",
		"http://127.0.0.1/",
	}
	for _, raw := range good {
		if _, probs := New([]Entry{{ClientID: "com.example.app", RedirectURIs: []string{raw}}}); probs != nil {
			t.Errorf("%q refused: %v", raw, probs)
		}
	}
	bad := map[string]string{
		"myapp:/callback":                                     "reverse-DNS",
		"com.example.app://callback":                          "single slash",
		"com.example.app:callback":                            "single slash",
		"Com.Example.App:/cb":                                 "lowercase",
		"com.example.app:/cb#frag":                            "fragment",
		"https://app.example.com/cb#":                         "fragment",
		"http://localhost/callback":                           "localhost",
		"http://127.0.0.1:8080/callback":                      "without a port",
		"http://127.0.0.1:/callback":                          "without a port",
		"http://app.example.com/cb":                           "loopback",
		"http://10.0.0.1/cb":                                  "loopback",
		"https://127.0.0.1/cb":                                "uses http",
		"https://user@app.example.com/cb":                     "user info",
		"https://App.Example.com/cb":                          "lowercase",
		"https:/app.example.com/cb":                           "absolute URL",
		"/relative":                                           "absolute URI",
		"":                                                    "empty",
		"https://app.example.com/c b":                         "ASCII",
		"https://app.example.com/" + strings.Repeat("a", 600): "longer",
	}
	for raw, want := range bad {
		_, probs := New([]Entry{{ClientID: "com.example.app", RedirectURIs: []string{raw}}})
		if len(probs) != 1 || probs[0].Key != "native_apps[0].redirect_uris[0]" || !strings.Contains(probs[0].Message, want) {
			t.Errorf("%q: problems %v, want one naming native_apps[0].redirect_uris[0] and saying %q", raw, probs, want)
		}
	}
}

func TestEntries(t *testing.T) {
	_, probs := New([]Entry{
		{ClientID: "", RedirectURIs: []string{"com.example.app:/cb"}},
		{ClientID: "a b", RedirectURIs: []string{"com.example.app:/cb"}},
		{ClientID: "com.example.app"},
		{ClientID: "com.example.app", RedirectURIs: []string{"com.example.app:/cb", "com.example.app:/cb"}},
	})
	want := []string{
		"native_apps[0].client_id", "native_apps[1].client_id", "native_apps[2].redirect_uris",
		"native_apps[3].client_id", "native_apps[3].redirect_uris[1]",
	}
	if len(probs) != len(want) {
		t.Fatalf("problems %v, want keys %v", probs, want)
	}
	for i, p := range probs {
		if p.Key != want[i] {
			t.Errorf("problem %d names %s (%s), want %s", i, p.Key, p.Message, want[i])
		}
	}
}

func TestMatch(t *testing.T) {
	reg, probs := New([]Entry{
		{ClientID: "com.example.app", RedirectURIs: []string{
			"com.example.app:/oauth2redirect", "https://app.example.com/native/cb", "http://127.0.0.1/callback", "http://[::1]/cb",
		}},
		{ClientID: "other", RedirectURIs: []string{"com.example.other:/cb"}},
	})
	if probs != nil {
		t.Fatal(probs)
	}
	for _, c := range []struct {
		client, uri string
		ok          bool
	}{
		{"com.example.app", "com.example.app:/oauth2redirect", true},
		{"com.example.app", "https://app.example.com/native/cb", true},
		{"com.example.app", "http://127.0.0.1/callback", true},
		{"com.example.app", "http://127.0.0.1:51234/callback", true},
		{"com.example.app", "http://127.0.0.1:1/callback", true},
		{"com.example.app", "http://127.0.0.1:65535/callback", true},
		{"com.example.app", "http://[::1]:8080/cb", true},

		{"other", "com.example.app:/oauth2redirect", false},   // another client's
		{"unknown", "com.example.app:/oauth2redirect", false}, // unknown client
		{"com.example.app", "com.example.other:/cb", false},   // registered for another client
		{"com.example.app", "com.example.app:/oauth2redirect?x=1", false},
		{"com.example.app", "com.example.app:/oauth2redirect#x", false},
		{"com.example.app", "com.example.app:/oauth2redirect/", false},
		{"com.example.app", "COM.EXAMPLE.APP:/oauth2redirect", false},
		{"com.example.app", "https://app.example.com/native/cb?x=1", false},
		{"com.example.app", "https://app.example.com:443/native/cb", false},
		{"com.example.app", "https://APP.example.com/native/cb", false},
		{"com.example.app", "http://127.0.0.1:0/callback", false},
		{"com.example.app", "http://127.0.0.1:65536/callback", false},
		{"com.example.app", "http://127.0.0.1:080/callback", false},
		{"com.example.app", "http://127.0.0.1:/callback", false},
		{"com.example.app", "http://127.0.0.1:8080/callback?x", false},
		{"com.example.app", "http://127.0.0.1:8080/callback#x", false},
		{"com.example.app", "http://127.0.0.1:8080/callback/x", false},
		{"com.example.app", "http://127.0.0.1.evil.example/callback", false},
		{"com.example.app", "http://127.0.0.1@evil.example/callback", false},
		{"com.example.app", "http://localhost:8080/callback", false},
		{"com.example.app", "http://[::1]:8080/callback", false}, // another path
		{"com.example.app", "https://127.0.0.1:8080/callback", false},
		{"com.example.app", "", false},
	} {
		if got := reg.Match(c.client, c.uri); got != c.ok {
			t.Errorf("Match(%q, %q) = %v, want %v", c.client, c.uri, got, c.ok)
		}
	}
	if !reg.Known("other") || reg.Known("nobody") || reg.Len() != 2 {
		t.Error("Known/Len wrong")
	}
	var none *Registry
	if none.Known("x") || none.Match("x", "y") || none.Len() != 0 {
		t.Error("a nil registry knows something")
	}
}
