// Command broker-dev is the one-command local demo: a throwaway Postgres,
// emulated Kakao, Naver, Google and Apple on loopback, and the broker with its demo
// frontend. It lives apart from cmd/broker so that the emulators never ship
// in the broker binary.
//
//	go run ./cmd/broker-dev [--listen ADDR]
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/socialbroker/broker/internal/app"
	"github.com/socialbroker/broker/internal/config"
	"github.com/socialbroker/broker/internal/fakeidp"
	"github.com/socialbroker/broker/internal/pglocal"
)

// devDir holds broker-dev's state: its Postgres cluster and its secrets,
// so a restart keeps users, sessions and keys.
const devDir = ".broker-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker-dev:", err)
		os.Exit(1)
	}
}

// run starts a throwaway Postgres (unless DATABASE_URL is set), emulated
// Kakao, Naver, Google and Apple providers on loopback, and the broker with the
// demo frontend, until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("broker-dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the broker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
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
	emus := []fakeidp.Options{
		{Kind: fakeidp.Kakao, ClientID: "dev-kakao-rest-key", ClientSecret: "dev-kakao-secret",
			User: fakeidp.User{Subject: "3012345678", Nickname: "라이언"}},
		{Kind: fakeidp.Naver, ClientID: "dev-naver-client", ClientSecret: "dev-naver-secret",
			User: fakeidp.User{Subject: "Vv7C1QbWx3nJ5dHqL0aYs9", Nickname: "네이버친구", Email: "friend@naver.example"}},
		{Kind: fakeidp.Google, ClientID: "dev-google.apps.example", ClientSecret: "dev-google-secret",
			User: fakeidp.User{Subject: "104857600000000000001", Email: "dev@gmail.example", EmailVerified: true, Name: "Dev User", Nickname: "Dev"}},
		// Apple on "localhost", another site than the broker at 127.0.0.1:
		// its form_post callback arrives cross-site, as from Apple.
		{Kind: fakeidp.Apple, ClientID: "dev.example.web", ExtraAudiences: []string{"dev.example.app"}, Host: "localhost",
			User: fakeidp.User{Subject: "001234.5f1c2e3d4b5a69788796a5b4c3d2e1f0.1234", Email: "dev@privaterelay.appleid.com", EmailVerified: true, Name: "Dev Appleseed"}},
	}
	var entries []map[string]any
	for _, o := range emus {
		name := string(o.Kind)
		o.RedirectURIs = callback(name)
		em, err := fakeidp.Start(o)
		if err != nil {
			return fmt.Errorf("emulated %s: %w", name, err)
		}
		defer em.Close()
		entries = append(entries, em.ProviderConfig(name, true))
	}
	providersYAML, err := yaml.Marshal(entries)
	if err != nil {
		return err
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
demo: true
providers:
%s`, issuer, *listen, dbURL, secrets.HashKey, secrets.BlockKey, issuer, secrets.EncryptionKey, issuer, issuer, providersYAML)
	cfg, err := config.Parse([]byte(doc), getenv)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, app.Options{Logger: log, DBWait: 20 * time.Second, Version: "dev"})
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx, func(addr string) {
		fmt.Fprintf(stdout, "\nbroker-dev is running.\n  open   %s/demo/   (the demo frontend; sign in with the emulated Kakao, Naver, Google or Apple)\n  login  %s/auth/login\n  stop   Ctrl-C\n\n", issuer, issuer)
	})
}

type devKeys struct {
	HashKey       string `json:"hash_key"`
	BlockKey      string `json:"block_key"`
	EncryptionKey string `json:"encryption_key"`
}

// devSecrets loads or creates broker-dev's keys.
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
