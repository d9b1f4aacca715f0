package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/socialbroker/broker/internal/config"
	"github.com/socialbroker/broker/storage"
)

func cmdEventsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var failed *bool
	var limit *int
	flags := func(fs *flag.FlagSet) func() error {
		failed = fs.Bool("failed", false, "only deliveries that failed or were given up")
		limit = fs.Int("limit", 100, "at most this many lines, newest first")
		return func() error {
			if *limit < 1 {
				return usageError{"events list: --limit must be positive"}
			}
			return nil
		}
	}
	return runAdmin(ctx, "events list", args, getenv, stdout, stderr, flags,
		func(ctx context.Context, cfg *config.Config, st *storage.Store, stdout io.Writer) error {
			evs, err := st.ListEvents(ctx, *failed, *limit)
			if err != nil {
				return err
			}
			for _, e := range evs {
				state := "pending"
				switch {
				case e.DeliveredAt != nil:
					state = "delivered"
				case e.GivenUpAt != nil:
					state = "given_up"
				}
				last := e.LastError
				if last == "" {
					last = "-"
				}
				fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\tattempts=%d\tcreated=%s\tnext=%s\tlast_error=%s\n",
					e.EventID, e.Type, state, e.Endpoint, e.Attempts, e.CreatedAt.UTC().Format(time.RFC3339),
					e.NextAttemptAt.UTC().Format(time.RFC3339), last)
			}
			return nil
		})
}

func cmdEventsRedeliver(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var id *string
	flags := func(fs *flag.FlagSet) func() error {
		id = fs.String("id", "", "event id (the webhook-id)")
		return func() error {
			if *id == "" {
				return usageError{"events redeliver: --id ID is required"}
			}
			return nil
		}
	}
	return runAdmin(ctx, "events redeliver", args, getenv, stdout, stderr, flags,
		func(ctx context.Context, cfg *config.Config, st *storage.Store, stdout io.Writer) error {
			n, err := st.Redeliver(ctx, *id, time.Now())
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("events redeliver: no event %s", *id)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "event %s due again for %d endpoint(s)\n", *id, n)
			return nil
		})
}
