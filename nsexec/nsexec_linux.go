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
	"strings"
	"sync/atomic"
	"syscall"
	"time"

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
	written := make(chan struct{})
	go func() { _, _ = pw.Write(r.Process); pw.Close(); close(written) }()
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
		pr.Close() // nsenter has it: should it die, the writer gets EPIPE instead of waiting
		// The process's spec must be in the pipe before nook exits, or exec-init reads an
		// empty one: the writer ends once exec-init has read it (or the pipe holds it all).
		<-written
		return 0, nil
	}

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	defer signal.Stop(sigs)
	// nsenter's own process group: a signal the terminal sends nook's group (Ctrl-C) goes
	// to nook only, which passes it on once, to the command. (The command is in a session of
	// its own, exec-init's, so nsenter reads nothing from the terminal.)
	cmd.SysProcAttr.Setpgid = true

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
	target := &commandProc{nsenter: cmd.Process.Pid, pidfd: -1}
	defer target.close()
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
			target.signal(sig, done)
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

// commandProc is the exec'd command, to which nook forwards the signals it gets (Docker's
// sig-proxy). nsenter forks to enter the PID namespace and waits for its child, which becomes
// exec-init and then the command (exec-init executes it in place): the command is nsenter's
// only child. nsenter forwards no signal, and a signal kills nsenter without its child.
type commandProc struct {
	nsenter int
	pidfd   int // the child's, once found; -1 before
}

// signal sends sig to the command, waiting briefly for nsenter's fork if it has not happened
// yet; while nsenter has no child (it failed, or it is still entering the namespaces), nsenter
// gets the signal. done is nsenter's end: it is not consumed.
func (c *commandProc) signal(sig syscall.Signal, done chan error) {
	for i := 0; c.pidfd < 0 && i < 200; i++ {
		if c.find() || len(done) > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c.pidfd >= 0 {
		_ = unix.PidfdSendSignal(c.pidfd, sig, nil, 0)
		return
	}
	_ = syscall.Kill(c.nsenter, sig)
}

// find opens a pidfd on nsenter's child; the pid is read again once the pidfd is open, so that
// the pidfd is the child's and not a reused pid's.
func (c *commandProc) find() bool {
	pid := childOf(c.nsenter)
	if pid <= 0 {
		return false
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	if childOf(c.nsenter) != pid {
		unix.Close(fd)
		return false
	}
	c.pidfd = fd
	return true
}

func (c *commandProc) close() {
	if c.pidfd >= 0 {
		unix.Close(c.pidfd)
	}
}

// childOf returns the first child of a single-threaded process, 0 when it has none.
func childOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
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

// copyIn: `nook cp HOSTPATH CONTAINER:PATH` into a running container; HOSTPATH "-" is a tar
// archive on standard input, extracted into the directory PATH. The host side writes the tar
// (as the user: -a records the host's owners), nook-runtime cp-in extracts it in the
// container (as its root: what it creates belongs to uid 0 there, or with -a to the archive's
// ids).
func copyIn(r *userns.HostRequest) (int, error) {
	args := []string{"cp-in"}
	if r.Archive {
		args = append(args, "-a")
	}
	if r.Src == "-" {
		args = append(args, "-d")
	}
	args = append(args, r.Dst)
	if r.Src == "-" {
		cmd, rt, err := nsenter(r, args...)
		if err != nil {
			return 125, err
		}
		defer rt.Close()
		// Standard input goes through a pipe of ours, so that the count of bytes is known and
		// nook does not wait on a read of its standard input once cp-in has ended (refused).
		pr, pw, err := os.Pipe()
		if err != nil {
			return 125, err
		}
		var n atomic.Int64
		go func() {
			_, _ = io.Copy(pw, &countReader{r: os.Stdin, n: &n})
			pw.Close()
		}()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, os.Stdout, os.Stderr
		err = cmd.Start()
		pr.Close()
		if err != nil {
			return 125, fmt.Errorf("start nsenter: %w", err)
		}
		if err := cmd.Wait(); err != nil {
			return 125, &quietError{err}
		}
		progress(r, n.Load())
		return 0, nil
	}
	src, err := filepath.Abs(r.Src)
	if err != nil {
		return 125, err
	}
	name := filepath.Base(src)
	if r.FollowLink {
		// The user's own file system: the link may lead anywhere the user can read.
		if src, err = filepath.EvalSymlinks(src); err != nil {
			return 125, fmt.Errorf("copy %s: %w", r.Src, errors.Unwrap(err))
		}
	}
	root, err := os.OpenRoot(filepath.Dir(src))
	if err != nil {
		return 125, fmt.Errorf("copy %s: %w", r.Src, err)
	}
	defer root.Close()
	if _, err := root.Lstat(filepath.Base(src)); err != nil {
		return 125, fmt.Errorf("copy %s: no such file or directory", r.Src)
	}
	cmd, rt, err := nsenter(r, args...)
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
	n, werr := cptar.Write(pw, root, filepath.Base(src), cptar.Options{Name: name})
	pw.Close()
	if err := cmd.Wait(); err != nil {
		return 125, &quietError{err}
	}
	if werr != nil {
		return 125, werr
	}
	progress(r, n)
	return 0, nil
}

// copyOut: `nook cp CONTAINER:PATH HOSTPATH` from a running container; HOSTPATH "-" is
// standard output, which gets the tar archive as nook-runtime cp-out writes it.
func copyOut(r *userns.HostRequest) (int, error) {
	args := []string{"cp-out"}
	if r.FollowLink {
		args = append(args, "-L")
	}
	args = append(args, r.Src)
	if r.Dst == "-" {
		cmd, rt, err := nsenter(r, args...)
		if err != nil {
			return 125, err
		}
		defer rt.Close()
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return 125, &quietError{err}
		}
		return 0, nil
	}
	dst, err := filepath.Abs(r.Dst)
	if err != nil {
		return 125, err
	}
	cmd, rt, err := nsenter(r, args...)
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
	var n atomic.Int64
	xerr := cptar.Extract(&countReader{r: out, n: &n}, root, rel, cptar.Options{})
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return 125, &quietError{err}
	}
	if xerr != nil {
		return 125, xerr
	}
	progress(r, n.Load())
	return 0, nil
}

// progress prints docker cp's last line, when the engine found the user on a terminal.
func progress(r *userns.HostRequest, n int64) {
	if r.Progress {
		fmt.Fprintf(os.Stderr, "Successfully copied %s to %s\n", cptar.Size(n), r.Shown)
	}
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// quietError is a failure already explained on stderr by the helper.
type quietError struct{ err error }

func (q *quietError) Error() string { return q.err.Error() }

// Quiet reports whether err was already printed.
func Quiet(err error) bool {
	var q *quietError
	return errors.As(err, &q)
}
