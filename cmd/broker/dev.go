package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/socialbroker/broker/internal/config"
	"github.com/socialbroker/broker/internal/pglocal"
	"github.com/socialbroker/broker/providers/emulator"
)

// devDir holds broker dev's state: its Postgres cluster and its secrets,
// so a restart keeps users, sessions and keys.
const devDir = ".broker-dev"

// cmdDev is `broker dev`: a one-command local demo. It starts a throwaway
// Postgres (unless DATABASE_URL is set), emulated Kakao, Naver and Google
// providers on loopback, and the broker with the demo frontend.
func cmdDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the broker")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := newLogger(stderr)
	dbURL := getenv("DATABASE_URL")
	if dbURL == "" {
		fmt.Fprintln(stdout, "starting a throwaway PostgreSQL under", filepath.Join(devDir, "pg"), "…")
		cl, err := pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(devDir, "pg")})
		if err != nil {
			if errors.Is(err, pglocal.ErrNoServer) {
				return fmt.Errorf("%w (or set DATABASE_URL to a database of yours)", err)
			}
			return err
		}
		defer cl.Stop()
		if err := cl.CreateDatabase(ctx, "broker"); err != nil && !strings.Contains(err.Error(), "already exists") {
			return err
		}
		dbURL = cl.URL("broker")
	}
	secrets, err := devSecrets(filepath.Join(devDir, "secrets.json"))
	if err != nil {
		return err
	}
	issuer := "http://" + *listen
	callback := func(name string) []string { return []string{issuer + "/auth/callback/" + name} }
	emus := []struct {
		name string
		opts emulator.Options
	}{
		{"kakao", emulator.Options{Kind: emulator.Kakao, ClientID: "dev-kakao-rest-key", ClientSecret: "dev-kakao-secret",
			User: emulator.User{Subject: "3012345678", Nickname: "라이언"}}},
		{"naver", emulator.Options{Kind: emulator.Naver, ClientID: "dev-naver-client", ClientSecret: "dev-naver-secret",
			User: emulator.User{Subject: "Vv7C1QbWx3nJ5dHqL0aYs9", Nickname: "네이버친구", Email: "friend@naver.example"}}},
		{"google", emulator.Options{Kind: emulator.Google, ClientID: "dev-google.apps.example", ClientSecret: "dev-google-secret",
			User: emulator.User{Subject: "104857600000000000001", Email: "dev@gmail.example", EmailVerified: true, Name: "Dev User", Nickname: "Dev"}}},
	}
	var providersYAML strings.Builder
	for _, e := range emus {
		e.opts.RedirectURIs = callback(e.name)
		em, err := emulator.Start(e.opts)
		if err != nil {
			return fmt.Errorf("emulated %s: %w", e.name, err)
		}
		defer em.Close()
		ep := em.Endpoints()
		fmt.Fprintf(&providersYAML, "  - name: %s\n    type: %s\n    client_id: %q\n    client_secret: %q\n", e.name, e.name, e.opts.ClientID, e.opts.ClientSecret)
		switch e.name {
		case "kakao":
			fmt.Fprintf(&providersYAML, "    scopes: [openid, profile_nickname]\n    auth_url: %q\n    token_url: %q\n    userinfo_url: %q\n    issuer: %q\n    jwks_url: %q\n    revoke_url: %q\n",
				ep.AuthURL, ep.TokenURL, ep.UserinfoURL, ep.Issuer, ep.JWKSURL, ep.RevokeURL)
		case "naver":
			fmt.Fprintf(&providersYAML, "    auth_url: %q\n    token_url: %q\n    userinfo_url: %q\n    revoke_url: %q\n",
				ep.AuthURL, ep.TokenURL, ep.UserinfoURL, ep.RevokeURL)
		case "google":
			fmt.Fprintf(&providersYAML, "    issuer: %q\n", ep.Issuer)
		}
	}
	doc := fmt.Sprintf(`issuer: %s
listen: %s
database:
  url: %q
cookies:
  hash_key: %s
  block_key: %s
  secure: false
tokens:
  access_ttl: 10m
  audience: [%s]
keys:
  encryption_key: %s
  jwks_max_age: 1m
redirects:
  allowed: [%s/demo/]
  default: %s/demo/
signup:
  mode: form
  fields: [nickname]
providers:
%s`, issuer, *listen, dbURL, secrets.HashKey, secrets.BlockKey, issuer, secrets.EncryptionKey, issuer, issuer, providersYAML.String())
	cfg, err := config.Parse([]byte(doc), getenv)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, stdout, func(addr string) {
		fmt.Fprintf(stdout, "\nbroker dev is running.\n  open   %s/demo/   (the demo frontend; sign in with the emulated Kakao, Naver or Google)\n  login  %s/auth/login\n  stop   Ctrl-C\n\n", issuer, issuer)
	})
}

type devKeys struct {
	HashKey       string `json:"hash_key"`
	BlockKey      string `json:"block_key"`
	EncryptionKey string `json:"encryption_key"`
}

// devSecrets loads or creates broker dev's keys.
func devSecrets(path string) (devKeys, error) {
	var k devKeys
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &k); err == nil {
			if _, err := config.DecodeKey(k.HashKey); err == nil {
				return k, nil
			}
		}
	}
	gen := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	k = devKeys{HashKey: gen(64), BlockKey: gen(32), EncryptionKey: gen(32)}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return k, err
	}
	b, _ := json.MarshalIndent(k, "", "  ")
	return k, os.WriteFile(path, b, 0o600)
}
