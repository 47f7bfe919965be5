package monitor

// An idle monitor becomes nook-idle (monitor/idle/idle.c), a freestanding C program of a few
// pages, and comes back when something happens:
//
//	nook-runtime monitor CONFIG            (Go: starts the container, copies its output, …)
//	   │ running, no attach client, no output and no forwarded connection or datagram for
//	   │ idleDelay; signals blocked, fds made inheritable, execve on the thread that started
//	   │ the init
//	   ▼
//	nook-idle FDS nook-runtime nook-monitor monitor-resume CONFIG HANDOFF
//	   │ ppoll(FDS + signalfd): output, an attach connection, a connection or a datagram on a
//	   │ published port, a signal, a child's end
//	   │ execve, with the signals it consumed as the last argument
//	   ▼
//	nook-runtime monitor-resume CONFIG HANDOFF SIGNALS   (Resume: Go again, same pid)
//
// The pid, the children (the init, slirp4netns: their parent-death signal is tied to the
// exec'ing thread, which survives an execve) and the inheritable fds stay (among them the port
// forwarder's host sockets and the container's network namespace: a pending connection waits
// in its listen backlog, a datagram in its socket's queue, for the resumed forwarder); the Go
// runtime and its pages go. Blocked signals stay pending across both execs, so none is lost; the monitor's
// start time stays, so proc.Alive still recognises it (its /proc/PID/exe changes).

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/slirp"
)

// IdleProgram is nook-idle's file name, next to nook-runtime.
const IdleProgram = "nook-idle"

// idleDelay is how long a running container must go without output and without an attach
// client before its monitor becomes nook-idle. Each wake-up costs an exec and a Go start-up
// (a few milliseconds), so a container that writes a line every few seconds should not wake it
// more than once per line, and a burst of output should be copied by one Go monitor; a second
// keeps both cheap while the monitor of a quiet container spends nearly all its life idle.
// bench/lifecycle.sh reads the idle memory 2 s after the start, past this delay.
const idleDelay = time.Second

// idleMaxFds is how many fds nook-idle polls at most (MAXFDS in idle/idle.c): a monitor with
// more (a range of a few hundred published ports) stays in Go.
const idleMaxFds = 256

// idleCheck is how often the Go monitor checks whether it has been idle for idleDelay.
const idleCheck = idleDelay / 5

// idlePath returns nook-idle's path next to runtime (nook-runtime), or "" when it is not
// there: then the monitor stays in Go (and trims its memory, trim_linux.go).
func idlePath(runtime string) string {
	if os.Getenv("NOOK_MONITOR_IDLE") == "0" {
		return ""
	}
	p := filepath.Join(filepath.Dir(runtime), IdleProgram)
	if unix.Access(p, unix.X_OK) != nil {
		return ""
	}
	return p
}

// IdleAvailable reports whether monitors started by the nook-runtime at runtime go idle.
func IdleAvailable(runtime string) bool { return idlePath(runtime) != "" }

// handoff is what the Go monitor passes to its next self across nook-idle: pids and fds.
// Fields are -1 when absent.
type handoff struct {
	Pid       int // the container's init
	Out, Err  int // output pipes' read ends (no terminal)
	Console   int // the terminal's master
	Stdin     int // the write end of the stdin pipe (-i without a terminal)
	StdinR    int // its read end, for restarts
	Listener  int // the attach socket
	Cgroup    int
	Slirp     slirp.Handoff
	Fwd       slirp.ForwarderHandoff // the port forwarder: Netns -1 and no Socks without one
	NoRestart bool
	Backoff   time.Duration
}

func (h handoff) String() string {
	nr := 0
	if h.NoRestart {
		nr = 1
	}
	s := fmt.Sprintf("pid=%d,out=%d,err=%d,con=%d,in=%d,inr=%d,lst=%d,cg=%d,slirp=%d,slirpexit=%d,slirpout=%d,fwdns=%d,norestart=%d,backoff=%d",
		h.Pid, h.Out, h.Err, h.Console, h.Stdin, h.StdinR, h.Listener, h.Cgroup,
		h.Slirp.Pid, h.Slirp.ExitFd, h.Slirp.OutFd, h.Fwd.Netns, nr, h.Backoff.Milliseconds())
	if len(h.Fwd.Socks) > 0 {
		fds := make([]string, len(h.Fwd.Socks))
		for i, fd := range h.Fwd.Socks {
			fds[i] = strconv.Itoa(fd)
		}
		s += ",fwd=" + strings.Join(fds, ":")
	}
	return s
}

func parseHandoff(s string) (handoff, error) {
	h := handoff{}
	fields := map[string]*int{}
	var nr, backoff int
	for k, p := range map[string]*int{"pid": &h.Pid, "out": &h.Out, "err": &h.Err, "con": &h.Console,
		"in": &h.Stdin, "inr": &h.StdinR, "lst": &h.Listener, "cg": &h.Cgroup, "slirp": &h.Slirp.Pid,
		"slirpexit": &h.Slirp.ExitFd, "slirpout": &h.Slirp.OutFd, "fwdns": &h.Fwd.Netns, "norestart": &nr, "backoff": &backoff} {
		*p = -1
		fields[k] = p
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "fwd" {
			// The forwarder's host sockets, in the order of its ports: "5:6:7".
			h.Fwd.Socks = nil
			for _, e := range strings.Split(v, ":") {
				fd, err := strconv.Atoi(e)
				if err != nil || fd < 0 || len(h.Fwd.Socks) >= idleMaxFds {
					return h, fmt.Errorf("monitor handoff: bad field %q", kv)
				}
				h.Fwd.Socks = append(h.Fwd.Socks, fd)
			}
			continue
		}
		p, ok := fields[k]
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return h, fmt.Errorf("monitor handoff: bad field %q", kv)
		}
		*p = n
	}
	if h.Pid <= 0 || h.Listener < 0 {
		return h, fmt.Errorf("monitor handoff %q: no init or attach socket", s)
	}
	if (len(h.Fwd.Socks) > 0) != (h.Fwd.Netns >= 0) {
		return h, fmt.Errorf("monitor handoff %q: a port forwarder needs its network namespace and host sockets", s)
	}
	if backoff > int(time.Hour/time.Millisecond) {
		return h, fmt.Errorf("monitor handoff %q: backoff out of range", s)
	}
	h.NoRestart, h.Backoff = nr == 1, time.Duration(max(backoff, 1))*time.Millisecond
	return h, nil
}

func fdOf(f *os.File) int {
	if f == nil {
		return -1
	}
	return int(f.Fd())
}

// sigmask is the set of the forwarded signals and SIGCHLD, as rt_sigprocmask wants it.
func sigmask() uint64 {
	var set uint64
	for _, s := range append([]os.Signal{syscall.SIGCHLD}, forwarded...) {
		set |= 1 << (uint(s.(syscall.Signal)) - 1)
	}
	return set
}

// setSigmask blocks or unblocks the signals of sigmask on every thread of the process.
func setSigmask(how int) error {
	set := sigmask()
	_, _, e := syscall.AllThreadsSyscall6(unix.SYS_RT_SIGPROCMASK, uintptr(how), uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// goIdle execs nook-idle when the run's container has been quiet for idleDelay with no client
// attached; it returns only when it did not (or the exec failed: then the monitor stays in
// Go). It runs on the thread that started the init.
func (m *mon) goIdle(r *run) {
	if m.idle == "" {
		return
	}
	m.io.Lock()
	defer m.io.Unlock()
	if time.Since(m.lastIO) < idleDelay {
		return
	}
	m.mu.Lock()
	busy := len(m.clients) > 0 || m.init == nil || m.listener == nil
	h := handoff{Pid: r.pid, Out: -1, Err: -1, Console: -1, Stdin: -1, StdinR: -1, Cgroup: fdOf(m.cgroup),
		NoRestart: m.noRestart, Backoff: m.backoff}
	stdin, stdinR, console := m.stdin, m.stdinR, m.console
	m.mu.Unlock()
	if busy {
		return
	}
	h.Fwd.Netns = -1
	if r.net != nil {
		h.Slirp, _ = r.net.Handoff() // runOnce checked that it can be handed off
		// A forwarded connection open, or one or a datagram within idleDelay: stay. Else the
		// forwarder takes nothing more from its host sockets: what comes waits for the
		// resumed monitor.
		var ok bool
		if h.Fwd, ok = r.net.PauseForwarder(idleDelay); !ok {
			return
		}
		defer func() { r.net.UnpauseForwarder() }() // still here: the exec did not happen
		// nook-idle polls two outputs, the attach socket, slirp4netns' output and the host
		// sockets: a few hundred published ports are more than it takes.
		if 4+len(h.Fwd.Socks) > idleMaxFds {
			m.idle = ""
			trimMemory()
			return
		}
	}
	// A child that ended and is not reaped would wake nook-idle at once: stay, and let its
	// waiter reap it.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err == nil && siPid(&info) != 0 {
		return
	}
	if err := setSigmask(unix.SIG_BLOCK); err != nil {
		m.idle = ""
		return
	}
	// Signals the Go runtime caught before the block: forward them now.
	for drained := false; !drained; {
		select {
		case s := <-m.sigs:
			m.kill(s.(syscall.Signal))
		default:
			drained = true
		}
	}
	h.Listener = int(m.listener.Fd())
	var poll []string
	if console != nil {
		h.Console = int(console.Fd())
	} else {
		h.Out, h.Err = fdOf(r.outs[0]), fdOf(r.outs[1])
		if stdin != nil {
			h.Stdin = int(stdin.Fd())
		}
		h.StdinR = fdOf(stdinR)
	}
	for _, f := range r.outs {
		if f != nil {
			poll = append(poll, strconv.Itoa(int(f.Fd())))
		}
	}
	poll = append(poll, strconv.Itoa(h.Listener))
	if h.Slirp.Pid > 0 {
		poll = append(poll, strconv.Itoa(h.Slirp.OutFd))
	}
	for _, fd := range h.Fwd.Socks {
		poll = append(poll, strconv.Itoa(fd))
	}
	keep := map[int]bool{0: true, 1: true, 2: true}
	for _, fd := range append([]int{h.Out, h.Err, h.Console, h.Stdin, h.StdinR, h.Listener, h.Cgroup, h.Slirp.ExitFd, h.Slirp.OutFd, h.Fwd.Netns}, h.Fwd.Socks...) {
		if fd >= 0 {
			keep[fd] = true
		}
	}
	inheritOnly(keep)
	// Both keep the monitor's name in ps: nook-monitor.
	argv := []string{"nook-monitor", strings.Join(poll, ","), m.cfg.Runtime, "nook-monitor", "monitor-resume", m.cfgPath, h.String()}
	err := unix.Exec(m.idle, argv, os.Environ())
	// Still here: stay in Go for good.
	for fd := range keep {
		if fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	for _, f := range append(r.outs[:], m.listener) {
		if f != nil {
			_ = unix.SetNonblock(int(f.Fd()), true)
		}
	}
	_ = setSigmask(unix.SIG_UNBLOCK)
	m.idle = ""
	fmt.Fprintf(os.Stderr, "nook-runtime monitor: exec %s: %v; the monitor stays in Go\n", IdleProgram, err)
}

// siPid is a siginfo's si_pid (at offset 16 on 64-bit Linux; x/sys leaves it in padding).
func siPid(info *unix.Siginfo) int32 {
	return *(*int32)(unsafe.Add(unsafe.Pointer(info), 16))
}

// inheritOnly makes the fds of keep inheritable across execve and every other fd of the
// process close-on-exec.
func inheritOnly(keep map[int]bool) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if keep[fd] {
			if fd > 2 {
				_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
			}
		} else {
			unix.CloseOnExec(fd)
		}
	}
}

// Resume is `nook-runtime monitor-resume CONFIG HANDOFF SIGNALS`, which nook-idle execs: the
// same monitor (pid, children, fds) back in Go. It takes the fds and pids of HANDOFF, forwards
// SIGNALS (those nook-idle consumed) to the container, and goes on where the monitor that went
// idle was: watching the running init (watch), then the restart policy and the cleanup (loop).
func Resume(cfgPath, hs, sigs string) int {
	goruntime.LockOSThread()
	m, err := newMon(cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nook-runtime monitor-resume: %v\n", err)
		return 125
	}
	h, err := parseHandoff(hs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nook-runtime monitor-resume: %v\n", err)
		return 125
	}
	st, err := ReadState(m.cfg.RunDir)
	if err != nil || st == nil {
		st = &State{Status: StatusRunning, MonitorPid: os.Getpid(), Pid: h.Pid, Detached: true}
	}
	m.state = *st
	m.noRestart, m.backoff = h.NoRestart, h.Backoff
	// The fds come back blocking (os.File.Fd made them so before the exec): those the
	// monitor reads or writes are made non-blocking again, which os.NewFile puts in the
	// poller; stdinR, the container's stdin on a restart, stays blocking.
	file := func(fd int, name string) *os.File {
		if fd < 0 {
			return nil
		}
		unix.CloseOnExec(fd)
		if name != "stdin-r" && name != "cgroup" {
			_ = unix.SetNonblock(fd, true)
		}
		return os.NewFile(uintptr(fd), name)
	}
	m.cgroup = file(h.Cgroup, "cgroup")
	m.notify()
	// nook-idle left the signals blocked (the mask an execve keeps): now that os/signal
	// catches them, unblock them.
	_ = setSigmask(unix.SIG_UNBLOCK)
	m.attachOne.Do(func() { close(m.attached) })
	r := &run{pid: h.Pid, readers: &sync.WaitGroup{}}
	in := &Init{Pid: h.Pid}
	if h.Console >= 0 {
		in.Console = file(h.Console, "console")
		m.console, m.stdin = in.Console, in.Console
		r.outs[0] = in.Console
	} else {
		r.outs = [2]*os.File{file(h.Out, "stdout"), file(h.Err, "stderr")}
		m.stdin, m.stdinR = file(h.Stdin, "stdin"), file(h.StdinR, "stdin-r")
	}
	m.init = in
	for i, f := range r.outs {
		if f != nil {
			m.copyOut(r, i, []string{"stdout", "stderr"}[i], []byte{FrameStdout, FrameStderr}[i])
		}
	}
	if m.cfg.Network != nil || h.Slirp.Pid > 0 || len(h.Fwd.Socks) > 0 {
		var c slirp.Config
		if m.cfg.Network != nil {
			c = *m.cfg.Network
		}
		if r.net, err = slirp.ResumeNetwork(h.Slirp, h.Fwd, c, m.cfg.RunDir); err != nil {
			fmt.Fprintf(os.Stderr, "nook-runtime monitor-resume: %v\n", err)
		}
	}
	unix.CloseOnExec(h.Listener)
	m.serveOn(h.Listener)
	for _, s := range strings.Split(sigs, ",") {
		if n, err := strconv.Atoi(s); err == nil && n > 0 && syscall.Signal(n) != syscall.SIGCHLD {
			m.kill(syscall.Signal(n))
		}
	}
	return m.loop(nil, r)
}
