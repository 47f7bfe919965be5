package monitor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"syscall"

	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/runtime"
)

// InitOptions say how to start a container's init.
type InitOptions struct {
	Runtime     string // path of nook-runtime
	Config      string // the container's config.json
	HostNetwork bool   // share the caller's network namespace (without Namespaces)
	// Namespaces, when set, say which namespaces the init gets (new, the caller's, or joined);
	// HostNetwork is then ignored.
	Namespaces *Namespaces
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
	reaped  chan struct{} // closed once reaped: ends the thread that joined namespaces for it
}

func (i *Init) wait() error {
	err := i.cmd.Wait()
	if i.reaped != nil {
		close(i.reaped)
		i.reaped = nil
	}
	return err
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
	ns := Namespaces{}
	if o.Namespaces != nil {
		ns = *o.Namespaces
	} else if o.HostNetwork {
		ns.Network = "host"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: uintptr(ns.cloneFlags()), Pdeathsig: syscall.SIGKILL}
	if o.Cgroup != nil {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(o.Cgroup.Fd())
	}
	var reaped chan struct{}
	if ns.PID != "" && ns.PID != "host" {
		// Go's child checks its parent after setting the signal and kills itself when
		// getppid() differs: in a joined PID namespace its parent is not visible (0), and
		// it is not that namespace's init, which a SIGKILL from inside would spare. The
		// init sets the signal itself (nook-runtime init).
		cmd.SysProcAttr.Pdeathsig = 0
	}
	if ns.Joins() {
		// Joining is for good (Namespaces.join), so it happens on a thread of its own, which
		// clones the init and lives until the init is reaped: the init's parent-death signal
		// is tied to it. The caller must then not exec while the container runs (the monitor
		// does not go idle).
		reaped = make(chan struct{})
		started := make(chan error)
		go func() {
			goruntime.LockOSThread() // never unlocked: the thread ends with this goroutine
			if err := ns.join(); err != nil {
				started <- err
				return
			}
			err := cmd.Start()
			started <- err
			if err == nil {
				<-reaped
			}
		}()
		err = <-started
	} else {
		err = cmd.Start()
	}
	if err != nil {
		initEnd.Close()
		return nil, fmt.Errorf("start container init: %w", err)
	}
	initEnd.Close()
	in := &Init{Pid: cmd.Process.Pid, cmd: cmd, reaped: reaped}
	fail := func(err error) (*Init, error) {
		_ = cmd.Process.Kill()
		_ = in.wait()
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
			_ = in.wait() // it exits by itself with m.Code
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
	err := i.wait()
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
