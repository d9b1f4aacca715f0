package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/socialbroker/broker/broker"
	"github.com/socialbroker/broker/storage"
	"github.com/socialbroker/broker/storage/storagetest"
)

// admin keys create prints the key alone; the store keeps only its hash;
// list shows names, never keys; revoke ends it; bad input fails non-zero.
func TestAdminKeysCommands(t *testing.T) {
	dbURL := storagetest.NewURL(t)
	env := map[string]string{"DATABASE_URL": dbURL}
	path := writeConfig(t, dbURL, "127.0.0.1:0")
	if _, _, err := runCmd(t, context.Background(), env, "migrate", "--config", path); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCmd(t, context.Background(), env, "admin", "keys", "create", "--name", "ops-alice", "--config", path)
	key := strings.TrimSpace(out)
	if err != nil || !strings.HasPrefix(key, "bka_") || strings.Count(out, "\n") != 1 {
		t.Fatalf("create = %q, %v; want the key alone on one line", out, err)
	}
	st, err := storage.Open(context.Background(), dbURL, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if name, err := st.AdminKeyName(context.Background(), broker.HashAdminKey(key)); err != nil || name != "ops-alice" {
		t.Fatalf("stored key = %q, %v", name, err)
	}
	var stored int
	if err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM admin_keys WHERE hash = $1`, []byte(key)).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("the key itself is stored (%d, %v)", stored, err)
	}
	if _, _, err := runCmd(t, context.Background(), env, "admin", "keys", "create", "--name", "ops-alice", "--config", path); err == nil {
		t.Fatal("a second key with the same name was created")
	}
	out, _, err = runCmd(t, context.Background(), env, "admin", "keys", "list", "--config", path)
	if err != nil || !strings.Contains(out, "ops-alice\t") || strings.Contains(out, key) {
		t.Fatalf("list = %q, %v", out, err)
	}
	if _, _, err := runCmd(t, context.Background(), env, "admin", "keys", "revoke", "--name", "ops-alice", "--config", path); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AdminKeyName(context.Background(), broker.HashAdminKey(key)); err == nil {
		t.Fatal("a revoked key still names its owner")
	}
	for _, args := range [][]string{
		{"admin", "keys", "revoke", "--name", "ops-alice", "--config", path}, // already revoked
		{"admin", "keys", "create", "--name", "bad name", "--config", path},
		{"admin", "keys", "create", "--config", path},
		{"admin", "nope"},
	} {
		if _, _, err := runCmd(t, context.Background(), env, args...); err == nil {
			t.Errorf("%q succeeded", args)
		}
	}
}

// A changed keys.encryption_key is named at start, and keys list calls the
// keys it cannot open unreadable, not removed.
func TestChangedEncryptionKey(t *testing.T) {
	dbURL := storagetest.NewURL(t)
	env := map[string]string{"DATABASE_URL": dbURL}
	path := writeConfig(t, dbURL, "127.0.0.1:0")
	if _, _, err := runCmd(t, context.Background(), env, "keys", "rotate", "--config", path); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCmd(t, context.Background(), env, "keys", "list", "--config", path)
	if err != nil || strings.Contains(out, "unreadable") {
		t.Fatalf("keys list with the right key = %q, %v", out, err)
	}
	other := strings.Replace(mustRead(t, path), "encryption_key: "+key32, "encryption_key: QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE", 1)
	writeFile(t, path, other)
	out, _, err = runCmd(t, context.Background(), env, "keys", "list", "--config", path)
	if err != nil || !strings.Contains(out, "\tunreadable\t") || strings.Contains(out, "removed") {
		t.Fatalf("keys list with another key = %q, %v; want unreadable keys", out, err)
	}
	_, _, err = runCmd(t, context.Background(), env, "serve", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "keys.encryption_key does not open the stored signing keys") {
		t.Fatalf("serve with another encryption key: %v", err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// serve with auto_migrate off on an empty database says to run migrate;
// sessions revoke for an unknown user fails.
func TestUnmigratedDatabaseAndUnknownUser(t *testing.T) {
	dbURL := storagetest.NewURL(t) // created empty? see below
	env := map[string]string{"DATABASE_URL": dbURL}
	path := writeConfig(t, dbURL, "127.0.0.1:0")
	writeFile(t, path, strings.Replace(mustRead(t, path), "database:\n  url: ${DATABASE_URL}\n", "database:\n  url: ${DATABASE_URL}\n  auto_migrate: false\n", 1))
	st, err := storage.Open(context.Background(), dbURL, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Pool().Exec(context.Background(), `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCmd(t, context.Background(), env, "serve", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "run `broker migrate") {
		t.Fatalf("serve on an empty database with auto_migrate false: %v", err)
	}
	if _, _, err := runCmd(t, context.Background(), env, "migrate", "--config", path); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCmd(t, context.Background(), env, "sessions", "revoke", "--user", "nobody", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "no user nobody") {
		t.Fatalf("sessions revoke of an unknown user: %v", err)
	}
}
