package main

import (
	"encoding/json"
	"fmt"
	"os"
	goruntime "runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/overlay"
	"github.com/nook-containers/nook/runtime"
)

// containerInit runs as PID 1 of the container's namespaces. On success it never returns: the
// payload replaces it. On failure it reports to the engine and returns the exit status.
func containerInit(config string) int {
	goruntime.LockOSThread()
	// Ended with the thread that cloned it (again: the engine's clone may not set it, see
	// monitor.StartInit).
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	sync := os.NewFile(runtime.SyncFd, "sync")
	fail := func(err error) int {
		code := runtime.ExitCode(err)
		if sendErr := runtime.Send(sync, runtime.Message{Type: runtime.MsgError, Code: code, Message: err.Error()}, nil); sendErr != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		}
		return code
	}
	b, err := os.ReadFile(config)
	if err != nil {
		return fail(fmt.Errorf("read container config: %w", err))
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return fail(fmt.Errorf("parse container config: %w", err))
	}
	timing.Mark("init config read")
	m, _, err := runtime.Recv(sync)
	if err != nil || m.Type != runtime.MsgGo {
		return 125 // the engine is gone or broken: nobody to report to
	}
	timing.Mark("init go")
	if err := runtime.UnshareCgroupNamespace(&s); err != nil {
		return fail(err)
	}
	if err := runtime.PrepareProcess(&s); err != nil {
		return fail(err)
	}
	timing.Mark("init rootfs")
	if err := overlay.SetupRootfs(&s); err != nil {
		return fail(err)
	}
	timing.Mark("init rootfs done")
	if s.Process != nil && s.Process.Terminal {
		master, err := overlay.SetupConsole()
		if err != nil {
			return fail(fmt.Errorf("set up terminal: %w", err))
		}
		if b := s.Process.ConsoleSize; b != nil {
			_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(b.Height), Col: uint16(b.Width)})
		}
		if err := runtime.Send(sync, runtime.Message{Type: runtime.MsgConsole}, master); err != nil {
			return fail(fmt.Errorf("send terminal: %w", err))
		}
		master.Close()
	}
	return fail(runtime.ExecWith(&s, runtime.ExecOptions{Listener: func(l *os.File) error {
		if err := runtime.Send(sync, runtime.Message{Type: runtime.MsgListener}, l); err != nil {
			return fmt.Errorf("send seccomp listener: %w", err)
		}
		return nil
	}}))
}
