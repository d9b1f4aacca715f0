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
