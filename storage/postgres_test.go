package storage_test

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"testing"

	"github.com/socialbroker/broker/internal/pgtest"
	"github.com/socialbroker/broker/migrations"
	"github.com/socialbroker/broker/storage"
	"github.com/socialbroker/broker/storage/storagetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestPostgresConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) *storage.Store { return storagetest.NewStore(t) })
}

// Two brokers starting together on an empty database apply the schema once.
func TestMigrateConcurrently(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	applied := make([]int, 3)
	for i := range applied {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st, err := storage.Open(ctx, url, storage.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			defer st.Close()
			n, err := st.Migrate(ctx)
			if err != nil {
				t.Errorf("broker %d: %v", i, err)
			}
			applied[i] = n
		}(i)
	}
	wg.Wait()
	total := 0
	for _, n := range applied {
		total += n
	}
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if total != len(files) {
		t.Fatalf("migrations applied in total = %d (%v), want each of the %d once", total, applied, len(files))
	}
}

// With the database stopped, calls fail fast with ErrUnavailable, and work
// again once it is back.
func TestUnavailable(t *testing.T) {
	cl := pgtest.NewCluster(t)
	ctx := context.Background()
	if err := cl.CreateDatabase(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(ctx, cl.URL("b"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.IdentityUser(ctx, "kakao", "1"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("with the database stopped: err = %v, want ErrUnavailable", err)
	}
	if err := cl.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.IdentityUser(ctx, "kakao", "1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after restart: err = %v, want ErrNotFound", err)
	}
}
