package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/socialbroker/broker/broker"
	"github.com/socialbroker/broker/internal/config"
	"github.com/socialbroker/broker/storage"
)

// adminKeyName: what a key may be called (it appears in audit actors as
// admin:NAME).
var adminKeyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// nameFlag adds a required --name to an admin keys command.
func nameFlag(name *string, cmd string) func(fs *flag.FlagSet) func() error {
	return func(fs *flag.FlagSet) func() error {
		fs.StringVar(name, "name", "", "the key's name (letters, digits, . _ -)")
		return func() error {
			if !adminKeyName.MatchString(*name) {
				return usageError{cmd + ": --name NAME is required (letters, digits, . _ -; at most 63)"}
			}
			return nil
		}
	}
}

func cmdAdminKeysCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var name string
	return runAdmin(ctx, "admin keys create", args, getenv, stdout, stderr, nameFlag(&name, "admin keys create"),
		func(ctx context.Context, cfg *config.Config, st *storage.Store, stdout io.Writer) error {
			key, hash := broker.NewAdminKey()
			err := st.CreateAdminKey(ctx, name, hash, time.Now())
			if errors.Is(err, storage.ErrConflict) {
				return fmt.Errorf("admin keys create: a key named %q exists (revoked keys keep their names)", name)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, key)
			return nil
		})
}

func cmdAdminKeysList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runAdmin(ctx, "admin keys list", args, getenv, stdout, stderr, nil,
		func(ctx context.Context, cfg *config.Config, st *storage.Store, stdout io.Writer) error {
			keys, err := st.AdminKeys(ctx)
			if err != nil {
				return err
			}
			for _, k := range keys {
				state := "active"
				if k.RevokedAt != nil {
					state = "revoked=" + k.RevokedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(stdout, "%s\tcreated=%s\t%s\n", k.Name, k.CreatedAt.UTC().Format(time.RFC3339), state)
			}
			return nil
		})
}

func cmdAdminKeysRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var name string
	return runAdmin(ctx, "admin keys revoke", args, getenv, stdout, stderr, nameFlag(&name, "admin keys revoke"),
		func(ctx context.Context, cfg *config.Config, st *storage.Store, stdout io.Writer) error {
			err := st.RevokeAdminKey(ctx, name, time.Now())
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("admin keys revoke: no active key named %q", name)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked admin key %s\n", name)
			return nil
		})
}
