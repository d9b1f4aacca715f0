// Package childproc starts child processes that end with this process.
package childproc

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Process is a started child.
type Process struct {
	PID  int
	Done chan struct{} // closed once the child has exited and been reaped
	Err  error         // cmd.Wait's result, once Done is closed
}

// Start starts cmd from a goroutine locked to its OS thread, which waits
// for the child and only then exits. A parent-death signal
// (SysProcAttr.Pdeathsig) is tied to the thread that forked the child, not
// to the process: had the fork happened on an ordinary thread, the Go
// runtime could retire that thread and the kernel would signal the child
// while this process lives. A locked goroutine keeps its thread for as
// long as it runs, and it runs until the child is reaped.
func Start(cmd *exec.Cmd) (*Process, error) {
	p := &Process{Done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, after the child.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.PID = cmd.Process.Pid
		started <- nil
		p.Err = cmd.Wait()
		close(p.Done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// Exited reports whether the child has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.Done:
		return true
	default:
		return false
	}
}

// ErrKilled: the child outlived SIGTERM and was killed.
var ErrKilled = errors.New("ignored SIGTERM and was killed")

// Stop sends SIGTERM, waits up to wait for the child to exit, then kills
// it. It returns the child's exit error (nil for status 0), or ErrKilled.
func (p *Process) Stop(wait time.Duration) error {
	if !p.Exited() {
		_ = syscall.Kill(p.PID, syscall.SIGTERM)
	}
	select {
	case <-p.Done:
		return p.Err
	case <-time.After(wait):
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	<-p.Done
	return fmt.Errorf("pid %d %w after %v", p.PID, ErrKilled, wait)
}
