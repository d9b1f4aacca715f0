// Package storagetest gives tests a migrated store on a fresh database and
// holds the storage conformance suite.
package storagetest

import (
	"context"
	"testing"

	"github.com/socialbroker/broker/internal/pgtest"
	"github.com/socialbroker/broker/storage"
)

// migrate prepares the template database every test database is cloned from.
func migrate(ctx context.Context, url string) error {
	st, err := storage.Open(ctx, url, storage.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.Migrate(ctx)
	return err
}

// NewURL returns the URL of a fresh, migrated database for this test.
func NewURL(t testing.TB) string {
	t.Helper()
	return pgtest.NewTemplatedDatabase(t, "migrated", migrate)
}

// NewStore returns a store on a fresh, migrated database, closed at cleanup.
func NewStore(t testing.TB) *storage.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), NewURL(t), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}
