package config

import (
	"strings"
	"testing"
)

func TestNativeApps(t *testing.T) {
	doc := valid + `native_apps:
  - client_id: com.example.app
    redirect_uris: [com.example.app:/oauth2redirect, "https://app.example.com/native/callback", "http://127.0.0.1/callback"]
`
	c, err := Parse([]byte(doc), env(goodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if !c.NativeApps.Match("com.example.app", "http://127.0.0.1:49152/callback") || c.NativeApps.Match("com.example.app", "http://127.0.0.1:49152/other") {
		t.Error("native_apps not loaded as written")
	}
	if c, err := Parse([]byte(valid), env(goodEnv())); err != nil || c.NativeApps != nil {
		t.Errorf("without native_apps: %v, %v", c.NativeApps, err)
	}

	bad := valid + `native_apps:
  - client_id: com.example.app
    redirect_uris: [myapp:/cb, "http://localhost/cb", "http://127.0.0.1:8080/cb", "https://app.example.com/cb#x"]
  - redirect_uris: [com.example.app:/cb]
    bogus: 1
`
	_, err = Parse([]byte(bad), env(goodEnv()))
	if err == nil {
		t.Fatal("bad native_apps accepted")
	}
	for _, want := range []string{
		"native_apps[0].redirect_uris[0]: a private-use scheme must be the reverse-DNS form",
		"native_apps[0].redirect_uris[1]: use http://127.0.0.1/",
		"native_apps[0].redirect_uris[2]: register a loopback redirect without a port",
		"native_apps[0].redirect_uris[3]: must not have a fragment",
		"native_apps[1].client_id: required",
		"native_apps[1].bogus: unknown key",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
