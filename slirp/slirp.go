package slirp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// slirp4netns' default network, which the container sees.
const (
	Interface = "tap0"
	GuestIP   = "10.0.2.100" // the container's address
	GatewayIP = "10.0.2.2"   // the host, when host loopback is allowed
	DNSIP     = "10.0.2.3"   // slirp4netns' resolver, forwarding to the host's
	MTU       = 65520        // the largest slirp4netns allows: fewer, larger packets are faster
	CIDR      = "10.0.2.0/24"

	// SocketName is the API socket's name in Options.Dir.
	SocketName = "slirp4netns.sock"
)

// Options says which network namespace to serve and how.
type Options struct {
	// PID is a process in the network namespace to serve (the container's init). It must be
	// in the caller's user namespace or a child of it.
	PID int
	// Dir holds the API socket while the network lives (the container's run directory).
	Dir string
	// AllowHostLoopback lets the container reach the host's 127.0.0.1 as GatewayIP.
	AllowHostLoopback bool
	// CIDR replaces slirp4netns' network, 10.0.2.0/24, when set.
	CIDR string
	// Binary is slirp4netns' path; "" looks it up in PATH.
	Binary string
	// ReadyTimeout bounds the wait for slirp4netns to configure the namespace; 0 is 10s.
	ReadyTimeout time.Duration
}

// Slirp4netns is a running slirp4netns.
type Slirp4netns struct {
	proc   *os.Process
	exit   *os.File // closing it tells slirp4netns to end (--exit-fd)
	out    *os.File // the read end of its stdout and stderr, copied to output
	dir    *os.File // O_PATH of Options.Dir, for a socket path short enough for sun_path
	socket string
	output *tail
	done   chan struct{} // closed once it has ended
	copied chan struct{} // closed once its output is at its end
	once   sync.Once
}

// Available says why slirp4netns cannot serve a container here, or returns its path: the
// binary must be in PATH and /dev/net/tun openable (distributions make it 0666; some servers
// leave it 0600, which only root can use).
func Available() (string, error) {
	path, err := exec.LookPath("slirp4netns")
	if err != nil {
		return "", errors.New("slirp4netns is not installed (Debian: apt-get install slirp4netns)")
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return path, fmt.Errorf("/dev/net/tun cannot be opened (%v%s): an administrator can run `chmod 0666 /dev/net/tun`, as distributions ship it", err, tunModeNote())
	}
	unix.Close(fd)
	return path, nil
}

// StartSlirp4netns runs slirp4netns against o.PID's network namespace and returns once tap0 is up and
// configured (address GuestIP, default route through GatewayIP). slirp4netns ends when Close
// is called, when the caller dies (exit fd, and SIGKILL as parent-death signal), and it never
// outlives the returned error.
func StartSlirp4netns(ctx context.Context, o Options) (*Slirp4netns, error) {
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = Available(); err != nil {
			return nil, err
		}
	}
	timeout := o.ReadyTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	dirFd, err := unix.Open(o.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: o.Dir, Err: err}
	}
	dir := os.NewFile(uintptr(dirFd), o.Dir)
	readyR, readyW, err := os.Pipe()
	if err != nil {
		dir.Close()
		return nil, err
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		dir.Close()
		readyW.Close()
		return nil, err
	}

	// The child that opens tap0 joins the target's network namespace by pid. It tries the
	// target's user namespace too and goes on when that fails, which it does here: the init is
	// in our own user namespace (setns to one's own user namespace is EINVAL), and we are its
	// root, so no --userns-path is needed. --enable-sandbox then needs CAP_SYS_ADMIN, which
	// root of our user namespace has.
	args := []string{
		"--configure",
		"--mtu=" + strconv.Itoa(MTU),
		"--enable-sandbox",
		"--enable-seccomp",
		"--ready-fd=3",
		"--exit-fd=4",
		// Relative to the working directory: a run directory's path can be longer than the
		// 108 bytes of a socket address. slirp4netns binds it before its sandbox pivots.
		"--api-socket=" + SocketName,
	}
	if !o.AllowHostLoopback {
		args = append(args, "--disable-host-loopback")
	}
	if o.CIDR != "" {
		args = append(args, "--cidr="+o.CIDR)
	}
	args = append(args, strconv.Itoa(o.PID), Interface)
	cmd := exec.Command(bin, args...)
	cmd.Dir = o.Dir
	cmd.Env = []string{}
	// A pipe of our own rather than os/exec's: a monitor that execs (nook-idle) keeps it.
	outR, outW, err := os.Pipe()
	if err != nil {
		dir.Close()
		readyW.Close()
		exitR.Close()
		exitW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.ExtraFiles = []*os.File{readyW, exitR}
	// Pdeathsig belongs to the thread that forks: the caller keeps its OS thread for as long
	// as the network lives (see engine.runContainer), else the kernel would kill slirp4netns
	// when the Go runtime retires that thread.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	readyW.Close()
	exitR.Close()
	outW.Close()
	if err != nil {
		dir.Close()
		exitW.Close()
		outR.Close()
		return nil, fmt.Errorf("start slirp4netns: %w", err)
	}
	n := &Slirp4netns{proc: cmd.Process, exit: exitW, out: outR, dir: dir, socket: filepath.Join(o.Dir, SocketName)}
	n.watch()

	// slirp4netns writes "1" on the ready fd once tap0 is configured; EOF means it died.
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = readyR.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = readyR.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 1)
	if _, err := readyR.Read(buf); err != nil {
		n.kill()
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = fmt.Errorf("not ready after %v", timeout)
		default:
			err = errors.New("it exited")
		}
		return nil, fmt.Errorf("slirp4netns: %w%s", err, n.output.suffix())
	}
	return n, nil
}

// watch copies slirp4netns' output to n.output and closes n.done once it has ended.
func (n *Slirp4netns) watch() {
	n.output, n.done, n.copied = &tail{max: 4096}, make(chan struct{}), make(chan struct{})
	go func() { _, _ = n.proc.Wait(); close(n.done) }()
	go func() { _, _ = io.Copy(n.output, n.out); close(n.copied) }()
}

// Handoff is what a process that replaces itself by execve keeps of a running slirp4netns,
// its child: the fds (made inheritable by the caller) and the pid.
type Handoff struct {
	Pid    int
	ExitFd int // --exit-fd's write end
	OutFd  int // the read end of its output
}

// Handoff returns n's pid and fds for a process that execs and resumes with ResumeSlirp4netns.
func (n *Slirp4netns) Handoff() Handoff {
	return Handoff{Pid: n.proc.Pid, ExitFd: int(n.exit.Fd()), OutFd: int(n.out.Fd())}
}

// ResumeSlirp4netns takes over a slirp4netns that this process started before it exec'd
// (Handoff); dir is its working directory, the container's run directory.
func ResumeSlirp4netns(h Handoff, dir string) (*Slirp4netns, error) {
	p, err := os.FindProcess(h.Pid)
	if err != nil {
		return nil, err
	}
	dirFd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	unix.CloseOnExec(h.ExitFd)
	unix.CloseOnExec(h.OutFd)
	n := &Slirp4netns{proc: p, exit: os.NewFile(uintptr(h.ExitFd), "slirp4netns-exit"), out: os.NewFile(uintptr(h.OutFd), "slirp4netns-out"),
		dir: os.NewFile(uintptr(dirFd), dir), socket: filepath.Join(dir, SocketName)}
	n.watch()
	return n, nil
}

// AddPort forwards proto ("tcp" or "udp") connections to hostIP:hostPort on the host to
// containerPort in the container. hostIP "" is every address.
func (n *Slirp4netns) AddPort(proto, hostIP string, hostPort, containerPort int) error {
	if hostIP == "" {
		hostIP = "0.0.0.0"
	}
	req := map[string]any{
		"execute": "add_hostfwd",
		"arguments": map[string]any{
			"proto": proto, "host_addr": hostIP, "host_port": hostPort,
			"guest_addr": GuestIP, "guest_port": containerPort,
		},
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	if err := n.call(req, &resp); err != nil {
		return fmt.Errorf("publish %s:%d:%d/%s: %w", hostIP, hostPort, containerPort, proto, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("publish %s:%d:%d/%s: slirp4netns: %s", hostIP, hostPort, containerPort, proto, resp.Error.Desc)
	}
	return nil
}

// call sends one request on a connection of its own, as slirp4netns' API serves one request
// per connection and then closes it.
func (n *Slirp4netns) call(req, resp any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("/proc/self/fd/%d/%s", n.dir.Fd(), SocketName)
	c, err := net.DialTimeout("unix", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("connect to slirp4netns' API socket %s: %w", n.socket, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	if err := json.NewDecoder(c).Decode(resp); err != nil {
		return fmt.Errorf("slirp4netns API reply: %w", err)
	}
	return nil
}

// Close ends slirp4netns and waits for it (SIGKILL after 5 s), then removes its API socket.
func (n *Slirp4netns) Close() error {
	n.once.Do(func() {
		n.exit.Close()
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			_ = n.proc.Kill()
			<-n.done
		}
		n.out.Close()
		_ = os.Remove(n.socket)
		n.dir.Close()
	})
	return nil
}

// kill ends a slirp4netns that failed to start.
func (n *Slirp4netns) kill() {
	_ = n.proc.Kill()
	n.exit.Close()
	<-n.done
	<-n.copied // its output is whole: the error message quotes it
	n.out.Close()
	_ = os.Remove(n.socket)
	n.dir.Close()
}

// tail keeps the last max bytes written to it: slirp4netns' output, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

// suffix is ": " and the last lines of slirp4netns' error output (up to three), or "".
func (t *tail) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(t.buf)), "\n") {
		l = strings.TrimSpace(l)
		// slirp4netns' progress lines say nothing about the failure.
		if l == "" || strings.HasPrefix(l, "*") || strings.HasPrefix(l, "Starting slirp") ||
			strings.HasPrefix(l, "sent tapfd") || strings.HasPrefix(l, "received tapfd") || strings.HasPrefix(l, "WARNING") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return ""
	}
	return ": " + strings.Join(lines[max(0, len(lines)-3):], "; ")
}

// tunModeNote is ", mode 0600" for the error that says /dev/net/tun cannot be opened.
func tunModeNote() string {
	var st unix.Stat_t
	if unix.Stat("/dev/net/tun", &st) != nil {
		return ""
	}
	return fmt.Sprintf(", mode %04o", st.Mode&0o7777)
}
