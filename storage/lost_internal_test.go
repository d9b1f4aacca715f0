package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestConnLost(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	for _, c := range []struct {
		err  error
		lost bool
	}{
		{nil, false},
		{pgx.ErrNoRows, false},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "40001"}, false},
		{&pgconn.PgError{Code: "57P01"}, true}, // terminated by an administrator
		{&pgconn.PgError{Code: "57P02"}, true}, // crash shutdown
		{&pgconn.PgError{Code: "08006"}, true},
		{fmt.Errorf("query: %w", io.ErrUnexpectedEOF), true},
		{io.EOF, true},
		{reset, true},
		{timeout, false},
		{context.DeadlineExceeded, false},
		{context.Canceled, false},
		{fmt.Errorf("%w: x", ErrUnavailable), false},
		{errors.New("something else"), false},
	} {
		if got := connLost(c.err); got != c.lost {
			t.Errorf("connLost(%v) = %v, want %v", c.err, got, c.lost)
		}
	}
}

// Only refused text is the caller's fault; other data exceptions (an
// overflowing interval from a huge configured lifetime) stay server errors.
func TestClassifyDataExceptions(t *testing.T) {
	for code, invalid := range map[string]bool{"22021": true, "22P05": true, "22P02": true, "22001": true, "22008": false, "22003": false} {
		err := classify(&pgconn.PgError{Code: code})
		if errors.Is(err, ErrInvalid) != invalid || errors.Is(err, ErrUnavailable) {
			t.Errorf("SQLSTATE %s: %v, want ErrInvalid %v", code, err, invalid)
		}
	}
}

func TestRolledBack(t *testing.T) {
	for code, want := range map[string]bool{"40P01": true, "40001": true, "23505": false, "57P01": false} {
		err := fmt.Errorf("tx: %w", &pgconn.PgError{Code: code})
		if rolledBack(err) != want {
			t.Errorf("rolledBack(%s) = %v, want %v", code, !want, want)
		}
	}
	if !errors.Is(classify(&pgconn.PgError{Code: "40P01"}), ErrUnavailable) {
		t.Error("a deadlock left after the retries is not answered as unavailable (503)")
	}
}
