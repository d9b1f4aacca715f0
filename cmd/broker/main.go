// Command broker is the social-login broker: see `broker help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

const usage = `usage: broker <command> [flags]

commands:
  serve --config FILE                     run the server (applies migrations unless database.auto_migrate: false)
  migrate --config FILE                   apply pending migrations and exit
  dev                                     moved: the local demo is go run ./cmd/broker-dev
  keys rotate --config FILE               create the next signing key (published before use)
  keys list --config FILE                 list signing keys
  sessions revoke --user ID --config FILE revoke every session of one user
  admin keys create --name NAME --config FILE   make an admin API key (printed once, alone on stdout)
  admin keys list --config FILE           list admin API keys (names, never the keys)
  admin keys revoke --name NAME --config FILE   revoke an admin API key
  events list [--failed] --config FILE    list recent event deliveries (--failed: failed or given up)
  events redeliver --id ID --config FILE  send an event again to every endpoint it was for
  version                                 print the version
`

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker:", oneLine(err))
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// oneLine joins a multi-problem error into one line for the exit reason;
// config errors are printed one per line before it.
func oneLine(err error) string {
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 1 {
		return fmt.Sprintf("%d problems (see above)", len(j.Unwrap()))
	}
	return err.Error()
}

// run is the whole program, testable without a process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, getenv, stdout, stderr)
	case "dev":
		return errors.New("dev: the local demo is a separate command, so that the emulators never ship in this binary: go run ./cmd/broker-dev")
	case "keys":
		if len(rest) == 0 {
			return usageError{"keys: want rotate or list"}
		}
		switch rest[0] {
		case "rotate":
			return cmdKeysRotate(ctx, rest[1:], getenv, stdout, stderr)
		case "list":
			return cmdKeysList(ctx, rest[1:], getenv, stdout, stderr)
		}
		return usageError{"keys: unknown subcommand " + rest[0]}
	case "sessions":
		if len(rest) == 0 || rest[0] != "revoke" {
			return usageError{"sessions: want revoke"}
		}
		return cmdSessionsRevoke(ctx, rest[1:], getenv, stdout, stderr)
	case "admin":
		if len(rest) < 2 || rest[0] != "keys" {
			return usageError{"admin: want keys create, keys list or keys revoke"}
		}
		switch rest[1] {
		case "create":
			return cmdAdminKeysCreate(ctx, rest[2:], getenv, stdout, stderr)
		case "list":
			return cmdAdminKeysList(ctx, rest[2:], getenv, stdout, stderr)
		case "revoke":
			return cmdAdminKeysRevoke(ctx, rest[2:], getenv, stdout, stderr)
		}
		return usageError{"admin keys: unknown subcommand " + rest[1]}
	case "events":
		if len(rest) == 0 {
			return usageError{"events: want list or redeliver"}
		}
		switch rest[0] {
		case "list":
			return cmdEventsList(ctx, rest[1:], getenv, stdout, stderr)
		case "redeliver":
			return cmdEventsRedeliver(ctx, rest[1:], getenv, stdout, stderr)
		}
		return usageError{"events: unknown subcommand " + rest[0]}
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "broker", versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{"unknown command " + cmd}
}

// versionString is the module version (or the -ldflags version), then the
// VCS revision, whether the tree was modified, and the revision's time,
// from the build info the go command stamps into the binary:
// "v1.2.3 (rev abc123def456, 2026-12-01T10:00:00Z)", or "devel" when built
// without module or VCS information.
func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(version, bi)
}

func formatVersion(ldflagsVersion string, bi *debug.BuildInfo) string {
	v := ldflagsVersion
	if v == "" && bi != nil {
		v = bi.Main.Version
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	if bi == nil {
		return v
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	parts := []string{"rev " + rev}
	if modified {
		parts = append(parts, "modified")
	}
	if at != "" {
		parts = append(parts, at)
	}
	return v + " (" + strings.Join(parts, ", ") + ")"
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}
