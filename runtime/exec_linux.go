package runtime

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/internal/timing"
)

// Exec finishes the container's process and execs s.Process.Args. It runs
// after the root is pivoted (overlay.SetupRootfs) and PrepareProcess, as uid
// 0 with every capability of the user namespace, and it returns only on
// failure: an *ExecError when the command cannot be found (127) or run
// (126), any other error for a setup failure (125; see ExitCode).
//
// The order is runc's (libcontainer/init_linux.go, finalizeNamespace):
// the working directory, then the bounding set (dropping needs
// CAP_SETPCAP), then groups, gid and uid with PR_SET_KEEPCAPS so the
// permitted set survives, then permitted/effective/inheritable and ambient.
// The parent-death signal is cleared by the kernel on a credential change
// (commit_creds), so it is armed again afterwards. no_new_privs comes last
// before the exec, then the seccomp filter (before the credential change
// instead when no_new_privs is off: see below). Every descriptor above 2 is marked close-on-exec except
// keep.
func Exec(s *specs.Spec, keep ...int) error { return ExecWith(s, ExecOptions{Keep: keep}) }

// ExecOptions are ExecWith's additions to the spec.
type ExecOptions struct {
	Keep []int // descriptors the payload keeps
	// Listener, when set and the spec has BypassAnnotation, gets the listener of the notify
	// filter (LoadNotifyFilter) before the main filter is loaded, and must pass it on (the
	// init sends it to the engine); the file is closed afterwards.
	Listener func(*os.File) error
}

// ExecWith is Exec with options.
func ExecWith(s *specs.Spec, o ExecOptions) error {
	// Capability sets, keepcaps, no_new_privs and the parent-death signal
	// belong to one thread, and execve keeps the calling thread's: all of
	// it must happen on this thread, which is never unlocked.
	goruntime.LockOSThread()

	p := s.Process
	if p == nil || len(p.Args) == 0 {
		return errors.New("exec: the spec has no process arguments")
	}
	umask := 0o022
	if p.User.Umask != nil {
		umask = int(*p.User.Umask)
	}
	unix.Umask(umask)
	if err := setupCwd(p.Cwd); err != nil {
		return err
	}
	path, err := lookPath("/", p.Args[0], pathFromEnv(p.Env))
	if err != nil {
		return err
	}

	// Compiled before anything is dropped, so that a bad profile is
	// reported as nook's error (125), not as the payload's.
	var filter *SeccompProgram
	if s.Linux != nil && s.Linux.Seccomp != nil {
		if filter, err = CompileSeccomp(s.Linux.Seccomp); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	timing.Mark("init seccomp compiled")
	// The notify filter comes before the main one, so that the main profile
	// need not allow seccomp(2) and sendmsg(2) for it.
	notify := o.Listener != nil && s.Annotations[BypassAnnotation] != ""
	loadNotify := func() error {
		if !notify {
			return nil
		}
		notify = false
		l, err := LoadNotifyFilter(BypassCalls(s.Annotations[BypassAnnotation]))
		if err != nil {
			return err
		}
		defer l.Close()
		return o.Listener(l)
	}
	// Without no_new_privs a filter can only be loaded with CAP_SYS_ADMIN:
	// load it now, before the capabilities go, as runc does; it must then
	// allow the set-up's own system calls (Docker's profile does).
	if !p.NoNewPrivileges {
		if err := loadNotify(); err != nil {
			return err
		}
	}
	if filter != nil && !p.NoNewPrivileges {
		if err := LoadSeccomp(filter); err != nil {
			return err
		}
		filter = nil
	}

	last := lastCap()
	var caps *capSets
	if p.Capabilities != nil {
		cs, err := capSetsFromSpec(p.Capabilities)
		if err != nil {
			return err
		}
		caps = &cs
		if err := dropBoundingSet(cs.bounding, last); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps: %w", err)
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keepcaps: %w", err)
	}
	if caps != nil {
		if err := applyCaps(*caps, last); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set parent-death signal: %w", err)
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if err := loadNotify(); err != nil {
		return err
	}
	if err := closeExtraFds(o.Keep); err != nil {
		return err
	}
	// Seccomp last, as runc: the fewer system calls made under the
	// filter, the fewer a profile has to allow for nook's sake.
	if err := LoadSeccomp(filter); err != nil {
		return err
	}
	timing.Mark("init exec")
	// The payload starts with no signal blocked, whatever this thread inherited (an idle
	// monitor's resumed self starts with the signals it forwards blocked; see monitor).
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &unix.Sigset_t{}, nil)
	err = unix.Exec(path, p.Args, p.Env)
	code := ExitCannotInvoke
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		code = ExitNotFound // e.g. a missing ELF interpreter
	}
	return &ExecError{Code: code, Name: p.Args[0], Err: err}
}

// setupCwd changes to the working directory, creating it (0755, owned by
// the container's root) when it does not exist, as Docker does at create
// time. It runs before the credential change, so any directory works.
func setupCwd(cwd string) error {
	if cwd == "" {
		cwd = "/"
	}
	err := unix.Chdir(cwd)
	if err == unix.ENOENT {
		if _, serr := os.Lstat(cwd); serr != nil && os.IsNotExist(serr) {
			if merr := os.MkdirAll(cwd, 0o755); merr != nil {
				return fmt.Errorf("create working directory %s: %w", cwd, merr)
			}
			err = unix.Chdir(cwd)
		}
	}
	if err != nil {
		return &os.PathError{Op: "chdir to working directory", Path: cwd, Err: err}
	}
	return nil
}

// setUser sets the supplementary groups, the gid and the uid of the whole
// process (Go's syscall package applies them to every thread).
func setUser(u specs.User) error {
	// setgroups(2) is refused in a user namespace whose setgroups file says
	// "deny" (a gid map written without newgidmap, Linux 3.19). The groups
	// then come only from /etc/group, which the user did not ask for
	// explicitly, so they are skipped as runc does in setupUser.
	if setgroupsAllowed() {
		gids := make([]int, 0, len(u.AdditionalGids))
		for _, g := range u.AdditionalGids {
			gids = append(gids, int(g))
		}
		if err := unix.Setgroups(gids); err != nil {
			return fmt.Errorf("setgroups %v: %w", u.AdditionalGids, notMapped(err))
		}
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setresgid %d: %w", u.GID, notMapped(err))
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setresuid %d: %w", u.UID, notMapped(err))
	}
	return nil
}

// notMapped explains EINVAL from set*id: the ID is outside the user
// namespace's map (single-ID mode maps only 0).
func notMapped(err error) error {
	if err == unix.EINVAL {
		return fmt.Errorf("%w (the ID is not mapped in the container's user namespace)", err)
	}
	return err
}

func setgroupsAllowed() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	if err != nil {
		return true // no user namespace support in /proc: nothing restricts it
	}
	return strings.TrimSpace(string(b)) != "deny"
}

// closeExtraFds marks every descriptor from 3 up close-on-exec, then clears
// the flag on keep. Marking instead of closing leaves the Go runtime's own
// descriptors working should the exec fail.
func closeExtraFds(keep []int) error {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		// close_range with CLOSE_RANGE_CLOEXEC is Linux 5.11.
		if err := cloexecFromProc(); err != nil {
			return err
		}
	}
	for _, fd := range keep {
		if fd <= 2 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("keep fd %d open: %w", fd, err)
		}
	}
	return nil
}

func cloexecFromProc() error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list open fds: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list open fds: %w", err)
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd <= 2 {
			continue
		}
		unix.CloseOnExec(fd) // the directory's own fd is gone by then: ignore errors
	}
	return nil
}
