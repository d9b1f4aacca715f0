package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/socialbroker/broker/broker/keys"
	"github.com/socialbroker/broker/internal/app"
	"github.com/socialbroker/broker/internal/config"
	"github.com/socialbroker/broker/storage"
)

// adminWait is how long one-shot commands wait for the database.
const adminWait = 5 * time.Second

// adminCommand is a one-shot command on the database: it gets the loaded
// config and an open store.
type adminCommand func(ctx context.Context, cfg *config.Config, st *storage.Store, stdout io.Writer) error

// runAdmin parses --config (and the flags flags adds), loads the config,
// opens the store and runs cmd.
func runAdmin(ctx context.Context, name string, args []string, getenv func(string) string, stdout, stderr io.Writer,
	flags func(*flag.FlagSet) func() error, cmd adminCommand) error {
	fs := newFlags(name, stderr)
	path := fs.String("config", "", "config file")
	check := func() error { return nil }
	if flags != nil {
		check = flags(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, getenv, stderr)
	if err != nil {
		return err
	}
	st, err := app.OpenStore(ctx, cfg, adminWait)
	if err != nil {
		return err
	}
	defer st.Close()
	return cmd(ctx, cfg, st, stdout)
}

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runAdmin(ctx, "migrate", args, getenv, stdout, stderr, nil,
		func(ctx context.Context, cfg *config.Config, st *storage.Store, stdout io.Writer) error {
			n, err := st.Migrate(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "applied %d migration(s)\n", n)
			return nil
		})
}

func cmdKeysRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runAdmin(ctx, "keys rotate", args, getenv, stdout, stderr, nil,
		func(ctx context.Context, cfg *config.Config, st *storage.Store, stdout io.Writer) error {
			km, err := app.NewKeyManager(st, cfg, newLogger(io.Discard), nil, nil)
			if err != nil {
				return err
			}
			kid, at, err := km.Rotate(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\tnext\tactivates=%s\n", kid, at.UTC().Format(time.RFC3339))
			return nil
		})
}

func cmdKeysList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runAdmin(ctx, "keys list", args, getenv, stdout, stderr, nil,
		func(ctx context.Context, cfg *config.Config, st *storage.Store, stdout io.Writer) error {
			km, err := app.NewKeyManager(st, cfg, newLogger(io.Discard), nil, nil)
			if err != nil {
				return err
			}
			if err := km.Refresh(ctx); err != nil {
				return err
			}
			rows, err := st.SigningKeys(ctx)
			if err != nil {
				return err
			}
			loaded := map[string]*keys.Key{}
			for _, k := range km.Keys() {
				loaded[k.KID] = k
			}
			now := time.Now()
			for i, r := range rows {
				state, retires := "removed", "-"
				if k, ok := loaded[r.KID]; ok {
					state = k.State(now)
				} else if slices.Contains(km.Unreadable(), r.KID) {
					state = "unreadable" // stored under another keys.encryption_key
				}
				if i+1 < len(rows) {
					retires = rows[i+1].ActivatesAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(stdout, "%s\t%s\tcreated=%s\tactivates=%s\tretires=%s\n", r.KID, state,
					r.CreatedAt.UTC().Format(time.RFC3339), r.ActivatesAt.UTC().Format(time.RFC3339), retires)
			}
			return nil
		})
}

func cmdSessionsRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var user *string
	flags := func(fs *flag.FlagSet) func() error {
		user = fs.String("user", "", "user id (the sub of its access tokens)")
		return func() error {
			if *user == "" {
				return usageError{"sessions revoke: --user ID is required"}
			}
			return nil
		}
	}
	return runAdmin(ctx, "sessions revoke", args, getenv, stdout, stderr, flags,
		func(ctx context.Context, cfg *config.Config, st *storage.Store, stdout io.Writer) error {
			if _, _, err := st.User(ctx, *user); errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("sessions revoke: no user %s", *user)
			} else if err != nil {
				return err
			}
			ctx = storage.WithActor(ctx, storage.Actor{Name: "admin:cli"})
			n, err := st.RevokeUserSessions(ctx, *user, time.Now(), "admin")
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %d session(s) of user %s\n", n, *user)
			return nil
		})
}
