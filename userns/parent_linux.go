package userns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/idmap"
	"github.com/nook-containers/nook/internal/timing"
)

// InEngine reports whether this process is the engine inside nook's user namespace.
func InEngine() bool { return os.Getenv(StageEnv) == stageEngine }

// RuntimePath finds the nook-runtime helper: $NOOK_RUNTIME, next to this executable, in
// ../libexec/nook, or in PATH.
func RuntimePath() (string, error) { return helperPath("nook-runtime", "NOOK_RUNTIME") }

// EnginePath finds the engine, bin/nook-engine: $NOOK_ENGINE, next to this executable, in
// ../libexec/nook, or in PATH. The lean CLI (cmd/nook) runs it; the engine runs itself.
func EnginePath() (string, error) { return helperPath("nook-engine", "NOOK_ENGINE") }

// LeanEnginePath finds the lean engine, bin/nook-engine-lean (the engine without
// containers/image and buildkit: the container commands), as EnginePath finds the full one,
// with $NOOK_ENGINE_LEAN.
func LeanEnginePath() (string, error) { return helperPath("nook-engine-lean", "NOOK_ENGINE_LEAN") }

// InitPath finds bin/nook-init, the container's PID 1 with `run --init`, as EnginePath finds
// the engine, with $NOOK_INIT.
func InitPath() (string, error) { return helperPath("nook-init", "NOOK_INIT") }

func helperPath(name, env string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		for _, p := range []string{filepath.Join(dir, name), filepath.Join(dir, "..", "libexec", "nook", name)} {
			if unix.Access(p, unix.X_OK) == nil {
				return p, nil
			}
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("cannot find %s: install it next to the nook binary or set %s", name, env)
	}
	return p, nil
}

// EngineExe is the program the shim executes as the engine: this very program, unless the
// lean CLI (which is not the engine) sets it to EnginePath's answer.
var EngineExe = "/proc/self/exe"

// PlanSummary encodes a plan for PlanEnv.
func PlanSummary(p *idmap.Plan) string {
	src := p.UIDSource
	return strings.Join([]string{p.Mode, idmap.Format(p.UIDMap), idmap.Format(p.GIDMap), src, p.Warning}, ";")
}

// EngineError is an error of the namespace set-up itself (not of the engine's work).
type EngineError struct{ Err error }

func (e *EngineError) Error() string { return e.Err.Error() }
func (e *EngineError) Unwrap() error { return e.Err }

// Enter runs this same program, with the same arguments, as the engine inside a new user and
// mount namespace mapped by plan, and returns the engine's exit status. Standard streams are
// shared. Signals sent to this process are forwarded to the engine.
func Enter(plan *idmap.Plan) (int, error) {
	code, _, err := EnterControl(plan)
	return code, err
}

// EnterControl is Enter that also returns what the engine said on the control pipe
// (control_linux.go).
func EnterControl(plan *idmap.Plan) (int, Control, error) {
	return EnterWith(plan, Options{})
}

// Join is an existing user namespace for the engine: a user network's keeper's (netuser), so
// that the engine is root of the namespace that owns both the network's bridge and the
// containers it starts.
type Join struct {
	Pid     int    // a process of the user namespace: the keeper
	Network string // the network, for JoinedNetwork in the engine
}

// joinedEnv tells the engine which network's keeper's user namespace it runs in.
const joinedEnv = "_NOOK_USERNET"

// JoinedNetwork is the user network whose keeper's user namespace this engine runs in, or "".
func JoinedNetwork() string { return os.Getenv(joinedEnv) }

// Options say which namespaces the engine runs in.
type Options struct {
	// Join: a user network's keeper's user namespace (and a mount namespace of the engine's
	// own). The CLI is the namespace's owner, which allows it to enter it, but
	// setns(CLONE_NEWUSER) needs a single-threaded process: util-linux's nsenter does it (as
	// for `nook exec`), and unshare(1) then gives the engine a mount namespace of its own, as
	// the clone of the ordinary path does. nsenter without --pid and unshare without --fork
	// execute in place: the shim, and then the engine, keep this child's pid, fds 3 to 5 and
	// parent-death signal wiring.
	Join *Join
	// PauseDir, when set (and Join is not), is the run root whose pause process's namespaces
	// the engine joins (pause_linux.go), started if need be, for PauseLinger.
	PauseDir    string
	PauseLinger time.Duration
}

// EnterWith is EnterControl in the namespaces o names: a user network's keeper's, the pause
// process's, or (o empty, or when joining the pause fails) new ones of the engine's own.
func EnterWith(plan *idmap.Plan, o Options) (int, Control, error) {
	if o.Join == nil && o.PauseDir != "" {
		r, pidfd, err := Pause(o.PauseDir, plan, o.PauseLinger)
		if err == nil {
			code, ctl, joined, err := enter(plan, o, pidfd, r.Pid)
			pidfd.Close()
			if joined {
				return code, ctl, err
			}
		}
		timing.Mark("cli pause refused")
	}
	code, ctl, _, err := enter(plan, o, nil, 0)
	return code, ctl, err
}

// enter starts the engine and waits for it. With pause (a pidfd of the pause process), it
// (pid pausePid) it reports joined=false, having run nothing, when nook-pause could not join
// its namespaces.
func enter(plan *idmap.Plan, o Options, pause *os.File, pausePid int) (int, Control, bool, error) {
	var none Control
	join := o.Join
	shim, err := RuntimePath()
	if err != nil {
		return 125, none, true, &EngineError{err}
	}
	exe, err := os.Open(EngineExe)
	if err != nil {
		return 125, none, true, &EngineError{fmt.Errorf("open the engine %s: %w", EngineExe, err)}
	}
	defer exe.Close()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return 125, none, true, &EngineError{err}
	}
	defer syncW.Close()
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		syncR.Close()
		return 125, none, true, &EngineError{err}
	}
	defer ctlR.Close()

	// A child subreaper: helpers that daemonize inside the namespace (fuse-overlayfs) are
	// re-parented to us when the engine dies, and are killed with the rest below.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	cmd := exec.Command(shim, append([]string{"shim"}, os.Args[1:]...)...)
	cmd.Args[0] = "nook-runtime"
	var statusR, statusW *os.File
	switch {
	case pause != nil:
		bin, err := PausePath()
		if err != nil {
			syncR.Close()
			ctlW.Close()
			return 125, none, false, nil
		}
		cmd = exec.Command(bin, append([]string{"join", "nook"}, os.Args[1:]...)...)
		cmd.Args[0] = "nook-pause"
		if statusR, statusW, err = os.Pipe(); err != nil {
			syncR.Close()
			ctlW.Close()
			return 125, none, false, nil
		}
		defer statusR.Close()
		// fd 3 is the pause's pidfd instead of the sync pipe, which nobody reads then.
		syncR.Close()
		syncR = pause
	case join != nil:
		nsenter, err := exec.LookPath("nsenter")
		if err != nil {
			return 125, none, true, &EngineError{errors.New("nsenter is not installed (util-linux): user networks need it")}
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			return 125, none, true, &EngineError{errors.New("unshare is not installed (util-linux): user networks need it")}
		}
		args := []string{"nsenter", "--user", "--target", strconv.Itoa(join.Pid), "--preserve-credentials", "--",
			unshare, "--mount", "--propagation", "unchanged", "--", shim, "shim"}
		cmd = exec.Command(nsenter, append(args, os.Args[1:]...)...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{syncR, exe, ctlW}
	if statusW != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, statusW)
	}
	cmd.Env = append(os.Environ(),
		StageEnv+"="+stageEngine,
		PlanEnv+"="+PlanSummary(plan),
		fmt.Sprintf("_CONTAINERS_ROOTLESS_UID=%d", os.Getuid()),
		fmt.Sprintf("_CONTAINERS_ROOTLESS_GID=%d", os.Getgid()),
		"_CONTAINERS_USERNS_CONFIGURED=done",
		ctlEnv+"=5",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		Setsid:     true,
		Pdeathsig:  syscall.SIGKILL,
	}
	if join != nil || pause != nil {
		cmd.SysProcAttr.Cloneflags = 0
	}
	if join != nil {
		cmd.Env = append(cmd.Env, joinedEnv+"="+join.Network)
	}
	if pause != nil {
		cmd.Env = append(cmd.Env, pauseEnv+"="+strconv.Itoa(pausePid))
	}
	// Forward signals from the moment the engine exists; buffered so none is lost.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	// Stopping the notification takes a round trip to the runtime's signal thread per signal
	// (1 to 3 ms for all of them): the CLI is about to exit, so it stops them in the background.
	defer func() { go signal.Stop(sigs) }()

	err = cmd.Start()
	if pause == nil {
		syncR.Close()
	}
	ctlW.Close()
	if statusW != nil {
		statusW.Close()
	}
	if err != nil {
		return 125, none, pause == nil, &EngineError{fmt.Errorf("start %s: %w", cmd.Path, err)}
	}
	pid := cmd.Process.Pid
	timing.Mark("cli shim started")
	switch {
	case pause != nil:
		// nook-pause says why it could not join, or its exec of the engine closes the pipe.
		why, _ := io.ReadAll(statusR)
		if len(why) > 0 {
			_ = cmd.Wait()
			return 125, none, false, nil
		}
		timing.Mark("cli joined pause")
	default:
		// A user network's keeper's namespace (join) was mapped with the same plan already.
		if join == nil {
			if err := plan.Apply(pid); err != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				return 125, none, true, &EngineError{fmt.Errorf("map user namespace: %w", err)}
			}
		}
		timing.Mark("cli mapped")
		if _, err := syncW.Write([]byte(MsgMapped)); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return 125, none, true, &EngineError{fmt.Errorf("release user namespace: %w", err)}
		}
	}

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var ctl Control
	said := make(chan bool, 1)
	go readControl(ctlR, &ctl, said)
	finish := func(engine int) {
		if ctl.Detached {
			// A container's monitor (and the fuse-overlayfs serving its rootfs, already
			// adopted by us) must outlive this CLI: leave them to the host's init.
			_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
		} else {
			killOrphans(engine)
		}
	}
	for {
		select {
		case s := <-sigs:
			sig, ok := s.(syscall.Signal)
			if !ok || sig == syscall.SIGCHLD || sig == syscall.SIGURG || sig == syscall.SIGPIPE {
				continue
			}
			_ = syscall.Kill(pid, sig)
		case exited := <-said:
			if exited {
				// The engine's work is done and its status known, and it has no child it did
				// not detach (Exiting): its teardown is left to it. In the pause's namespaces
				// nothing nook starts daemonizes (no fuse-overlayfs), so no orphan can have
				// been adopted and the sweep, 1.5-3 ms beside an exiting engine, is skipped;
				// in a namespace of its own, fuse-overlayfs's daemon may have been.
				if pause == nil || ctl.Detached {
					finish(pid) // detached: only the subreaper is dropped
				}
				return ctl.Exit, ctl, true, nil
			}
			said = nil // the pipe ended without "exit": wait for the process
		case err := <-done:
			if said != nil {
				// Whatever the engine wrote is in the pipe, whose last holder has gone.
				select {
				case <-said:
				case <-time.After(500 * time.Millisecond):
				}
			}
			finish(0)
			code, err := exitStatus(cmd.ProcessState, err)
			if ctl.Exited && err == nil {
				code = ctl.Exit
			}
			return code, ctl, true, err
		}
	}
}

func exitStatus(ps *os.ProcessState, err error) (int, error) {
	if ps == nil {
		return 125, &EngineError{err}
	}
	ws := ps.Sys().(syscall.WaitStatus)
	switch {
	case ws.Exited():
		return ws.ExitStatus(), nil
	case ws.Signaled():
		return 125, &EngineError{fmt.Errorf("nook engine killed by signal %d (%s)", int(ws.Signal()), ws.Signal())}
	}
	return 125, &EngineError{fmt.Errorf("nook engine ended with status %v", ws)}
}

// keep are children killOrphans spares: user networks' keepers, which outlive this CLI while
// other containers hold them (netuser).
var keep = map[int]bool{}

// KeepChild makes killOrphans spare the child pid.
func KeepChild(pid int) { keep[pid] = true }

// killOrphans kills and reaps every remaining child (adopted as subreaper) but engine, whose
// own teardown is under way, so that nothing nook started outlives it. The kernel lists each
// thread's children in /proc/self/task/TID/children (CONFIG_PROC_CHILDREN), which is cheaper
// than scanning /proc.
func killOrphans(engine int) {
	// Usually there is no child left at all: one waitid says so without reading /proc.
	var si unix.Siginfo
	if err := unix.Waitid(unix.P_ALL, 0, &si, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err == unix.ECHILD {
		return
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil || keep[pid] || pid == engine {
				continue
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}
	}
}

// ExecFull replaces the lean engine (bin/nook-engine-lean) with the full one (EnginePath), in
// place: the same arguments, environment, namespaces, standard streams and control pipe, and
// the same pid, which the CLI goes on waiting for and forwarding signals to. The full engine
// runs the command from the start, so the lean one must call this before it has changed
// anything. It returns only on failure.
func ExecFull() error {
	path, err := EnginePath()
	if err != nil {
		return err
	}
	env := os.Environ()
	if ctl != nil {
		// ClaimControl made the pipe close-on-exec and took its variable: both go back.
		if _, err := unix.FcntlInt(ctlFd, unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("hand the command to the full engine: %w", err)
		}
		env = append(env, ctlEnv+"=5")
	}
	err = unix.Exec(path, os.Args, env)
	if ctl != nil {
		unix.CloseOnExec(ctlFd)
	}
	return fmt.Errorf("hand the command to the full engine %s: %w", path, err)
}
