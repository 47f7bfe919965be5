// Package nsexec joins a running container from the host, for `nook exec` and `nook cp`: it
// runs util-linux's nsenter against the container's init, which enters the container's user
// namespace first and then its other namespaces, and executes nook-runtime there. It runs in
// the CLI, outside nook's user namespace: setns(CLONE_NEWUSER) needs a single-threaded
// process (nsenter is one; a Go program is not) that has CAP_SYS_ADMIN in the target user
// namespace, which its owner — the user on the host — has.
package nsexec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/nook-containers/nook/cptar"
	"github.com/nook-containers/nook/userns"
)

// Run does r and returns nook's exit status: the command's for exec.
func Run(r *userns.HostRequest) (int, error) {
	switch r.Op {
	case "exec":
		return runExec(r)
	case "cp-in":
		return copyIn(r)
	case "cp-out":
		return copyOut(r)
	}
	return 125, fmt.Errorf("unknown host request %q", r.Op)
}

// nsenter prepares `nsenter --target PID ... -- /proc/self/fd/3 ARGS`: nook-runtime is
// passed as fd 3, opened on the host, because its path means nothing in the container's
// mount namespace.
func nsenter(r *userns.HostRequest, args ...string) (*exec.Cmd, *os.File, error) {
	bin, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, nil, errors.New("nsenter is not installed: it is in util-linux (Debian: apt-get install util-linux)")
	}
	rt, err := userns.RuntimePath()
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(rt)
	if err != nil {
		return nil, nil, err
	}
	a := []string{"--target", strconv.Itoa(r.Pid), "--user", "--mount", "--pid", "--uts", "--ipc", "--cgroup",
		"--preserve-credentials", "--root"}
	// With --network host the container shares the host's network namespace: it is ours
	// already, and not the container's to enter (the initial user namespace owns it).
	if !sameNetNS(r.Pid) {
		a = append(a, "--net")
	}
	a = append(a, "--", "/proc/self/fd/3")
	a = append(a, args...)
	cmd := exec.Command(bin, a...)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	return cmd, f, nil
}

func sameNetNS(pid int) bool {
	a, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	b, err2 := os.Readlink("/proc/self/ns/net")
	return err1 == nil && err2 == nil && a == b
}

func runExec(r *userns.HostRequest) (int, error) {
	cmd, rt, err := nsenter(r, "exec-init")
	if err != nil {
		return 125, err
	}
	defer rt.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 125, err
	}
	defer pr.Close()
	go func() { _, _ = pw.Write(r.Process); pw.Close() }()
	cmd.ExtraFiles = append(cmd.ExtraFiles, pr)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if r.Cgroup != "" {
		// nsenter, and so the command, starts in the container's cgroup (CLONE_INTO_CGROUP);
		// the user owns that delegated cgroup on the host.
		cg, err := os.Open(r.Cgroup)
		if err != nil {
			return 125, fmt.Errorf("open the container's cgroup: %w", err)
		}
		defer cg.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
	}

	if r.Detach {
		null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return 125, err
		}
		defer null.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
		cmd.SysProcAttr.Setsid = true
		if err := cmd.Start(); err != nil {
			return 125, fmt.Errorf("start nsenter: %w", err)
		}
		_ = cmd.Process.Release()
		return 0, nil
	}

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	defer signal.Stop(sigs)

	var master *os.File
	var restore func()
	if r.TTY {
		m, slave, err := openPty(r.Pid)
		if err != nil {
			return 125, err
		}
		master = m
		defer master.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		resize(master)
		if r.Stdin && term.IsTerminal(int(os.Stdin.Fd())) {
			if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
				restore = func() { _ = term.Restore(int(os.Stdin.Fd()), st) }
			}
		}
		err = cmd.Start()
		slave.Close()
		if err != nil {
			return 125, fmt.Errorf("start nsenter: %w", err)
		}
	} else {
		if r.Stdin {
			cmd.Stdin = os.Stdin
		}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return 125, fmt.Errorf("start nsenter: %w", err)
		}
	}
	copied := make(chan struct{})
	if master != nil {
		go func() { _, _ = io.Copy(os.Stdout, master); close(copied) }()
		if r.Stdin {
			go func() { _, _ = io.Copy(master, os.Stdin) }()
		}
	} else {
		close(copied)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			sig, ok := s.(syscall.Signal)
			if !ok || sig == syscall.SIGCHLD || sig == syscall.SIGURG || sig == syscall.SIGPIPE {
				continue
			}
			if sig == syscall.SIGWINCH && master != nil {
				resize(master)
				continue
			}
			_ = cmd.Process.Signal(sig)
			continue
		case err := <-done:
			if master != nil {
				<-copied
			}
			if restore != nil {
				restore()
			}
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				return 125, err
			}
			ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				return 128 + int(ws.Signal()), nil
			}
			return ws.ExitStatus(), nil
		}
	}
}

// openPty opens a pseudo-terminal for an exec'd process with -t: on the container's own devpts
// instance (reached through its init's root), so that the process sees it as /dev/pts/N; on the
// host's when the init's root cannot be opened (its payload runs as another user).
func openPty(pid int) (master, slave *os.File, err error) {
	mfd, err := unix.Open(fmt.Sprintf("/proc/%d/root/dev/pts/ptmx", pid), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		mfd, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: "/dev/ptmx", Err: err}
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("open pty slave: %w", errno)
	}
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(sfd, "pty"), nil
}

func resize(master *os.File) {
	for _, f := range []*os.File{os.Stdin, os.Stdout} {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
			return
		}
	}
}

// copyIn: `nook cp HOSTPATH CONTAINER:PATH` into a running container.
func copyIn(r *userns.HostRequest) (int, error) {
	src, err := filepath.Abs(r.Src)
	if err != nil {
		return 125, err
	}
	root, err := os.OpenRoot(filepath.Dir(src))
	if err != nil {
		return 125, fmt.Errorf("copy %s: %w", r.Src, err)
	}
	defer root.Close()
	if _, err := root.Lstat(filepath.Base(src)); err != nil {
		return 125, fmt.Errorf("copy %s: no such file or directory", r.Src)
	}
	cmd, rt, err := nsenter(r, "cp-in", r.Dst)
	if err != nil {
		return 125, err
	}
	defer rt.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 125, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return 125, fmt.Errorf("start nsenter: %w", err)
	}
	pr.Close()
	werr := cptar.Write(pw, root, filepath.Base(src))
	pw.Close()
	if err := cmd.Wait(); err != nil {
		return 125, &quietError{err}
	}
	if werr != nil {
		return 125, werr
	}
	return 0, nil
}

// copyOut: `nook cp CONTAINER:PATH HOSTPATH` from a running container.
func copyOut(r *userns.HostRequest) (int, error) {
	dst, err := filepath.Abs(r.Dst)
	if err != nil {
		return 125, err
	}
	cmd, rt, err := nsenter(r, "cp-out", r.Src)
	if err != nil {
		return 125, err
	}
	defer rt.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 125, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 125, fmt.Errorf("start nsenter: %w", err)
	}
	rootDir, rel := filepath.Dir(dst), filepath.Base(dst)
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		rootDir, rel = dst, "."
	}
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 125, fmt.Errorf("copy to %s: %w", r.Dst, err)
	}
	defer root.Close()
	xerr := cptar.Extract(out, root, rel)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return 125, &quietError{err}
	}
	if xerr != nil {
		return 125, xerr
	}
	return 0, nil
}

// quietError is a failure already explained on stderr by the helper.
type quietError struct{ err error }

func (q *quietError) Error() string { return q.err.Error() }

// Quiet reports whether err was already printed.
func Quiet(err error) bool {
	var q *quietError
	return errors.As(err, &q)
}
