package monitor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/runtime"
)

// InitOptions say how to start a container's init.
type InitOptions struct {
	Runtime     string // path of nook-runtime
	Config      string // the container's config.json
	HostNetwork bool   // share the caller's network namespace
	// Standard streams of the init (and so of the payload without a terminal); nil is
	// /dev/null.
	Stdin, Stdout, Stderr *os.File
	// BeforeGo runs once the init exists in its new namespaces, before it sets them up: the
	// place to give it a network or a cgroup. An error stops the start.
	BeforeGo func(pid int) error
	// Cgroup is the container's cgroup directory: the init is cloned into it
	// (CLONE_INTO_CGROUP). nil leaves it in the caller's.
	Cgroup *os.File
	// Listener takes the seccomp listener the init sends when its config asks for one
	// (runtime.BypassAnnotation): the network's bypass handler (slirp.Network.Listener). The
	// file is closed when it returns; an error stops the start.
	Listener func(*os.File) error
}

// Init is a started container init. Its process must be waited for with Wait.
type Init struct {
	Pid     int
	Console *os.File // the terminal's master, when the spec asks for a terminal
	cmd     *exec.Cmd
}

// StartError is a failure the init reported: Code is the status it exits with (125, or 126/127
// when the command cannot be run or found).
type StartError struct {
	Code int
	Msg  string
}

func (e *StartError) Error() string { return e.Msg }

// StartInit clones `nook-runtime init` into new PID, mount, UTS, IPC and (unless HostNetwork)
// network namespaces (the init unshares its cgroup namespace itself, once in its cgroup), runs BeforeGo, sends "go" and returns once the payload was
// executed (the protocol socket closed) — the diagram is in runtime/protocol_linux.go. The init
// gets SIGKILL when the calling thread ends, so a caller that is not the main thread of a
// long-lived process locks its OS thread first. On failure the init has been reaped and the
// error is a *StartError when the init reported it.
func StartInit(o InitOptions) (*Init, error) {
	engineEnd, initEnd, err := runtime.SocketPair()
	if err != nil {
		return nil, err
	}
	defer engineEnd.Close()
	cmd := exec.Command(o.Runtime, "init", o.Config)
	cmd.Args[0] = "nook-init"
	cmd.Env = []string{}
	if timing.Enabled() {
		cmd.Env = append(cmd.Env, timing.Env+"="+os.Getenv(timing.Env), timing.LogEnv+"="+os.Getenv(timing.LogEnv))
	}
	cmd.ExtraFiles = []*os.File{initEnd}
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	if o.Stdin != nil {
		cmd.Stdin = o.Stdin
	}
	flags := unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC
	if !o.HostNetwork {
		flags |= unix.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: uintptr(flags), Pdeathsig: syscall.SIGKILL}
	if o.Cgroup != nil {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(o.Cgroup.Fd())
	}
	if err := cmd.Start(); err != nil {
		initEnd.Close()
		return nil, fmt.Errorf("start container init: %w", err)
	}
	initEnd.Close()
	in := &Init{Pid: cmd.Process.Pid, cmd: cmd}
	fail := func(err error) (*Init, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if in.Console != nil {
			in.Console.Close()
		}
		return nil, err
	}
	if o.BeforeGo != nil {
		if err := o.BeforeGo(in.Pid); err != nil {
			return fail(err)
		}
	}
	if err := runtime.Send(engineEnd, runtime.Message{Type: runtime.MsgGo}, nil); err != nil {
		return fail(fmt.Errorf("start container: %w", err))
	}
	for {
		m, fd, err := runtime.Recv(engineEnd)
		if errors.Is(err, runtime.ErrEOF) {
			return in, nil
		}
		if err != nil {
			return fail(err)
		}
		switch m.Type {
		case runtime.MsgConsole:
			if fd == nil {
				return fail(errors.New("container init sent no terminal"))
			}
			in.Console = fd
		case runtime.MsgListener:
			if fd == nil {
				return fail(errors.New("container init sent no seccomp listener"))
			}
			err := errors.New("the container asked for bypass4netns, but its network has no handler")
			if o.Listener != nil {
				err = o.Listener(fd)
			}
			fd.Close()
			if err != nil {
				return fail(err)
			}
		case runtime.MsgError:
			if fd != nil {
				fd.Close()
			}
			_ = cmd.Wait() // it exits by itself with m.Code
			if in.Console != nil {
				in.Console.Close()
			}
			return nil, &StartError{Code: m.Code, Msg: m.Message}
		}
	}
}

// Wait waits for the init to end and returns its status as Docker reports it: the exit code,
// or 128+N when signal N killed it.
func (i *Init) Wait() int {
	err := i.cmd.Wait()
	return StatusOf(i.cmd.ProcessState, err)
}

// Signal sends sig to the init.
func (i *Init) Signal(sig syscall.Signal) error { return syscall.Kill(i.Pid, sig) }

// StatusOf turns a wait result into Docker's status.
func StatusOf(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 125
	}
	ws := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
