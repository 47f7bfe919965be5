// Command nook-engine is nook's engine and full CLI: every command, parsed with cobra, and the
// work on the store inside nook's user namespace. Users run bin/nook (cmd/nook), the lean front,
// which runs this binary in the user namespace for the engine's commands and hands it the rest.
package main

import (
	"errors"
	"fmt"
	"os"

	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/engine"
	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/userns"
)

func main() {
	timing.Mark("main")
	// Descriptors the caller of nook left open without close-on-exec (a shell's `exec 4>file`,
	// a job server's pipe) stay with this process: the monitors and helpers it starts, which can
	// outlive the caller by days, must not hold them. Ours are opened close-on-exec, or passed
	// on explicitly.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	// containers/storage re-executes this binary for some layer operations; those children
	// must do their job and exit before any of nook's own code runs.
	if reexec.Init() {
		return
	}
	code := Main(os.Args[1:])
	timing.Mark("exit")
	// The CLI returns on this word; the process's teardown is no longer in its time.
	userns.Exiting(code)
	os.Exit(code)
}

// Main runs nook with args and returns the exit status. It is the one place that turns an
// error into output.
func Main(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var st *statusError
	if errors.As(err, &st) {
		if st.err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", st.err)
		}
		return st.code
	}
	var ee *engine.ExitError
	if errors.As(err, &ee) {
		fmt.Fprintf(os.Stderr, "Error: %v\n", ee.Err)
		return ee.Code
	}
	fmt.Fprintf(os.Stderr, "Error: %v\n", err)
	return 125
}

// statusError ends nook with a given status; err, if set, is printed first.
type statusError struct {
	code int
	err  error
}

func (s *statusError) Error() string {
	if s.err != nil {
		return s.err.Error()
	}
	return fmt.Sprintf("exit status %d", s.code)
}
