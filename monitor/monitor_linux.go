package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	goruntime "runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/internal/proc"
	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/slirp"
)

// Config is what the engine tells a container's monitor (monitor.json in the run directory).
type Config struct {
	ID          string `json:"id"`
	Runtime     string `json:"runtime"` // nook-runtime
	Bundle      string `json:"config"`  // the container's config.json
	RunDir      string `json:"runDir"`  // state file, attach socket, network socket
	LogPath     string `json:"logPath"`
	Terminal    bool   `json:"terminal"`
	Stdin       bool   `json:"stdin"` // -i: keep the container's stdin open for attach
	HostNetwork bool   `json:"hostNetwork"`
	// Namespaces, when set, are the init's namespaces (InitOptions.Namespaces).
	Namespaces *Namespaces `json:"namespaces,omitempty"`
	Network    *Network    `json:"network,omitempty"` // slirp4netns, when set
	Restart    string      `json:"restart,omitempty"` // "", no, always, on-failure, unless-stopped
	MaxRetries int         `json:"maxRetries,omitempty"`
	// WaitAttach holds the start until a client has attached (FrameAttach), so that it sees
	// all of the output: `nook run` in the foreground and `nook start -a`.
	WaitAttach bool `json:"waitAttach,omitempty"`
	// Cleanup is run once the container has ended for good: `nook container cleanup ID`,
	// which records the exit, unmounts the rootfs and removes a --rm container.
	Cleanup []string `json:"cleanup,omitempty"`
}

// Network is a container's user-mode network (slirp4netns or pasta) and its published ports.
type Network = slirp.Config

// Port is one published port.
type Port = slirp.Port

// Report is the monitor's one message to the engine that started it (on fd 3): the init's pid
// once the payload runs, or why it could not start.
type Report struct {
	Pid   int    `json:"pid,omitempty"`
	Code  int    `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
}

// ReportFd is the engine's pipe in the monitor; CgroupFd, when open, the container's cgroup.
const (
	ReportFd = 3
	CgroupFd = 4
)

// StartNetwork gives the init pid its network and publishes n's ports (slirp.Setup).
func StartNetwork(n *Network, pid int, dir string) (*slirp.Network, error) {
	return slirp.Setup(context.Background(), *n, pid, dir)
}

type client struct {
	fd       int
	out      chan []byte   // frames to send; nil ends the writer
	done     chan struct{} // closed when the writer has ended
	attached bool
	cleaned  chan struct{} // closed by FrameCleanupDone
}

type mon struct {
	cfg     Config
	cfgPath string
	log     *Log
	// io is held around each read of the container's output (and its copy to the log and
	// clients) and each accepted attach connection, and by the exec into nook-idle: no data is
	// read, nor connection taken, that the exec would lose.
	io     sync.Mutex
	lastIO time.Time // last output or attach connection (under io)
	idle   string    // nook-idle's path; "" stays in Go (see idle_linux.go)
	sigs   chan os.Signal
	// backoff is the pause before the next restart, doubled by each
	backoff time.Duration
	mu      sync.Mutex
	init    *Init
	// the container's stdin: the write end of its pipe, or the terminal's master
	stdin     *os.File
	console   *os.File
	clients   map[*client]bool
	noRestart bool
	state     State
	cgroup    *os.File
	listener  *os.File      // the attach socket, nil once closed
	attached  chan struct{} // closed by the first FrameAttach
	stdinR    *os.File      // -i without a terminal: the read end of the container's stdin pipe
	pending   []byte        // input for a terminal not yet there
	attachOne sync.Once
	claimer   *client // the client that will run the cleanup (FrameCleanupClaim)
}

// Run is `nook-runtime monitor CONFIG`: it starts the container, watches it for as long as it
// runs (restarting it as its policy says), and cleans up after it. It returns the exit status
// of the monitor process. While the container runs and nothing happens the monitor execs
// nook-idle, which execs `nook-runtime monitor-resume` (Resume) again when something does.
func Run(cfgPath string) int {
	// The init's and slirp4netns' parent-death signal is tied to the thread that started
	// them: this one, for the monitor's whole life (the exec into nook-idle happens on it too).
	goruntime.LockOSThread()
	report := os.NewFile(ReportFd, "report")
	m, err := newMon(cfgPath)
	if err != nil {
		sendReport(report, Report{Code: 125, Error: err.Error()})
		return 125
	}
	var st unix.Stat_t
	if unix.Fstat(CgroupFd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		unix.CloseOnExec(CgroupFd)
		m.cgroup = os.NewFile(CgroupFd, "cgroup")
	}
	m.state = State{MonitorPid: os.Getpid(), MonitorStart: proc.Self(), Detached: true}
	lfd, err := Listen(m.cfg.RunDir)
	if err != nil {
		sendReport(report, Report{Code: 125, Error: err.Error()})
		return 125
	}
	m.serveOn(lfd)
	m.notify()
	if m.cfg.Stdin && !m.cfg.Terminal {
		// One pipe for the container's life, restarts included: input sent before the
		// payload runs waits in it.
		r, w, err := os.Pipe()
		if err != nil {
			sendReport(report, Report{Code: 125, Error: err.Error()})
			return 125
		}
		m.stdinR, m.stdin = r, w
	}
	if m.cfg.WaitAttach {
		select {
		case <-m.attached:
		case <-time.After(time.Minute):
		}
	}
	return m.loop(report, nil)
}

// newMon reads the monitor's config and opens the container's log.
func newMon(cfgPath string) (*mon, error) {
	b, err := os.ReadFile(cfgPath)
	var cfg Config
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("read monitor config: %v", err)
	}
	m := &mon{cfg: cfg, cfgPath: cfgPath, clients: map[*client]bool{}, attached: make(chan struct{}), backoff: 100 * time.Millisecond, lastIO: time.Now()}
	if m.log, err = OpenLog(cfg.LogPath); err != nil {
		return nil, fmt.Errorf("open container log: %v", err)
	}
	m.idle = idlePath(cfg.Runtime)
	if cfg.Namespaces != nil && cfg.Namespaces.Joins() {
		m.idle = "" // the init's parent is a thread of this process that an exec would end
	}
	return m, nil
}

// memberName is the container's name on its user network as its config says now: `nook
// rename` rewrites the config of a running container, whose monitor joins the network again
// under that name when its restart policy starts it again.
func (m *mon) memberName(name string) string {
	b, err := os.ReadFile(m.cfgPath)
	if err != nil {
		return name
	}
	var cfg Config
	if json.Unmarshal(b, &cfg) != nil || cfg.Network == nil || cfg.Network.UserNet == nil {
		return name
	}
	return cfg.Network.UserNet.Name
}

// notify routes the signals the monitor forwards to the container to m.sigs (watch forwards
// them).
func (m *mon) notify() {
	m.sigs = make(chan os.Signal, 16)
	signal.Notify(m.sigs, forwarded...)
}

// forwarded are the signals the monitor passes on to the container's init.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// loop runs the container until it has ended for good: cur, when set, is a run already under
// way (a resumed monitor's), else the container is started (report, when set, tells the
// engine how the first start went).
func (m *mon) loop(report *os.File, cur *run) int {
	for {
		var code int
		var err error
		if cur != nil {
			code = m.watch(cur)
			cur = nil
		} else {
			code, err = m.runOnce(report)
		}
		if report != nil {
			if err != nil {
				// Reported before the cleanup: the engine holds the container's lock, which
				// the cleanup takes.
				sendReport(report, Report{Code: code, Error: err.Error()})
				m.finish(code)
				return 0
			}
			report = nil
		}
		if !m.shouldRestart(code) {
			m.finish(code)
			return 0
		}
		m.mu.Lock()
		m.state.Restarts++
		m.state.Status = StatusRestarting
		st := m.state
		m.mu.Unlock()
		_ = WriteState(m.cfg.RunDir, &st)
		time.Sleep(m.backoff)
		m.backoff = min(m.backoff*2, 10*time.Second)
		m.mu.Lock()
		stopped := m.noRestart
		m.mu.Unlock()
		if stopped {
			m.finish(code)
			return 0
		}
	}
}

func sendReport(f *os.File, r Report) {
	if f == nil {
		return
	}
	b, _ := json.Marshal(r)
	_, _ = f.Write(append(b, '\n'))
	f.Close()
}

func (m *mon) shouldRestart(code int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.noRestart {
		return false
	}
	switch m.cfg.Restart {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (m.cfg.MaxRetries <= 0 || m.state.Restarts < m.cfg.MaxRetries)
	}
	return false
}

// run is one start of the container: its init, still running, and what goes with it.
type run struct {
	pid     int
	readers *sync.WaitGroup // the output copiers
	// outs are the output's read ends still open (a pipe each for stdout and stderr, or the
	// terminal's master in outs[0]); a copier sets its own to nil at the end (under m.io).
	outs [2]*os.File
	net  *slirp.Network
}

// runOnce starts the container and waits for it to end; report is non-nil on the first start,
// which tells the engine the outcome.
func (m *mon) runOnce(report *os.File) (int, error) {
	var stdin, stdout, stderr *os.File // the init's ends
	r := &run{readers: &sync.WaitGroup{}}
	var closeAfter []*os.File
	if !m.cfg.Terminal {
		outR, outW, err := os.Pipe()
		if err != nil {
			return 125, err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			return 125, err
		}
		stdout, stderr = outW, errW
		closeAfter = append(closeAfter, outW, errW)
		r.outs = [2]*os.File{outR, errR}
		m.copyOut(r, 0, "stdout", FrameStdout)
		m.copyOut(r, 1, "stderr", FrameStderr)
		stdin = m.stdinR // nil without -i: /dev/null
	}
	timing.Mark("monitor start init")
	in, err := StartInit(InitOptions{
		Runtime: m.cfg.Runtime, Config: m.cfg.Bundle, HostNetwork: m.cfg.HostNetwork,
		Namespaces: m.cfg.Namespaces, Stdin: stdin, Stdout: stdout, Stderr: stderr, Cgroup: m.cgroup,
		BeforeGo: func(pid int) error {
			if m.cfg.Network == nil {
				return nil
			}
			c := *m.cfg.Network
			c.Runtime = m.cfg.Runtime
			if c.UserNet != nil {
				u := *c.UserNet
				u.Name = m.memberName(u.Name)
				c.UserNet = &u
			}
			var err error
			r.net, err = StartNetwork(&c, pid, m.cfg.RunDir)
			return err
		},
		Listener: func(f *os.File) error { return r.net.Listener(f) },
	})
	timing.Mark("monitor init started")
	for _, f := range closeAfter {
		f.Close()
	}
	if err != nil {
		if r.net != nil {
			r.net.Close()
		}
		r.readers.Wait()
		m.closeStdin()
		code := 125
		var se *StartError
		if errors.As(err, &se) {
			code = se.Code
		}
		return code, err
	}
	if in.Console != nil {
		// Non-blocking, so that its copier waits in the poller and not in a read that holds
		// m.io (a dup: the received file is blocking).
		fd, err := unix.FcntlInt(in.Console.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err == nil && unix.SetNonblock(fd, true) == nil {
			in.Console.Close()
			in.Console = os.NewFile(uintptr(fd), "console")
		}
		r.outs[0] = in.Console
	}
	m.mu.Lock()
	m.init = in
	m.console = in.Console
	if in.Console != nil {
		m.stdin = in.Console
		if len(m.pending) > 0 {
			_, _ = in.Console.Write(m.pending)
			m.pending = nil
		}
	}
	m.state.Status, m.state.Pid, m.state.Started = StatusRunning, in.Pid, time.Now().UTC()
	m.state.Finished, m.state.ExitCode = time.Time{}, 0
	st := m.state
	m.mu.Unlock()
	if in.Console != nil {
		m.copyOut(r, 0, "stdout", FrameStdout)
	}
	_ = WriteState(m.cfg.RunDir, &st)
	sendReport(report, Report{Pid: in.Pid})
	r.pid = in.Pid
	if r.net != nil {
		if _, ok := r.net.Handoff(); !ok {
			m.idle = "" // pasta's output copier or a user network lives in this process's threads
		}
	}
	if m.idle == "" {
		trimMemory() // the monitor stays in Go: make its idle self small
	}
	return m.watch(r), nil
}

// watch waits for the run's init to end, forwarding signals, and goes idle (nook-idle) when
// nothing happens; it returns the init's status. It runs on the monitor's locked thread: the
// exec into nook-idle must happen on the thread that started the init and slirp4netns.
func (m *mon) watch(r *run) int {
	// The wait leaves the init a zombie (WNOWAIT): an exec into nook-idle between this
	// goroutine's wake-up and the reaping below loses nothing.
	exited := make(chan struct{})
	go func() {
		var info unix.Siginfo
		for unix.Waitid(unix.P_PID, r.pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
		}
		close(exited)
	}()
	tick := time.NewTicker(idleCheck)
	defer tick.Stop()
wait:
	for {
		select {
		case <-exited:
			break wait
		case s := <-m.sigs:
			m.kill(s.(syscall.Signal))
		case <-tick.C:
			m.goIdle(r)
		}
	}
	code := reap(r.pid)
	// Every process of the container is gone with its PID 1 (the kernel kills the rest of a
	// PID namespace): the output pipes reach their end. The terminal's master may linger
	// while an exec'd process holds the slave, so its reader is given a moment only.
	done := make(chan struct{})
	go func() { r.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	if r.net != nil {
		r.net.Close()
	}
	m.mu.Lock()
	m.init = nil
	m.state.ExitCode, m.state.Finished = code, time.Now().UTC()
	m.mu.Unlock()
	m.closeStdin()
	return code
}

// reap collects the ended child pid and returns its status as Docker reports it: the exit
// code, or 128+N when signal N killed it.
func reap(pid int) int {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 125
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// closeStdin closes the terminal of a run that ended; a stdin pipe lives on for a restart.
func (m *mon) closeStdin() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.console != nil {
		m.console.Close()
		if m.stdin == m.console {
			m.stdin = nil
		}
	}
	m.console = nil
}

// finish records the end, runs the cleanup command, tells the attached clients and closes.
func (m *mon) finish(code int) {
	m.mu.Lock()
	m.state.Status, m.state.ExitCode = StatusExited, code
	if m.state.Finished.IsZero() {
		m.state.Finished = time.Now().UTC()
	}
	st := m.state
	m.mu.Unlock()
	_ = WriteState(m.cfg.RunDir, &st)
	// No new client from here (the connected ones get the exit frame): the socket's name is
	// free for the container's next monitor as soon as the cleanup has released the lock.
	m.io.Lock()
	if m.listener != nil {
		m.listener.Close() // wakes the accept loop
		m.listener = nil
	}
	m.io.Unlock()
	_ = os.Remove(m.cfg.RunDir + "/" + AttachSocket)
	timing.Mark("monitor container ended")
	if len(m.cfg.Cleanup) > 0 && !m.handOverCleanup(code) {
		cmd := exec.Command(m.cfg.Cleanup[0], m.cfg.Cleanup[1:]...)
		cmd.Args[0] = "nook"
		cmd.Dir = "/"
		_ = cmd.Run()
		timing.Mark("monitor cleaned up")
	}
	m.log.Close()
	// The exit frame goes after the output already queued for each client; then the writers
	// end, and the monitor waits (a little) until they have written everything.
	exit := append([]byte{FrameExit}, strconv.Itoa(code)...)
	m.mu.Lock()
	var cs []*client
	for c := range m.clients {
		cs = append(cs, c)
		for _, b := range [][]byte{exit, nil} {
			select {
			case c.out <- b:
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	m.mu.Unlock()
	deadline := time.After(2 * time.Second)
	for _, c := range cs {
		select {
		case <-c.done:
		case <-deadline:
		}
	}
}

// cleanupWait bounds how long a client that claimed the cleanup may take: it waits for the
// container's lock, which a start or rm of the same container may hold for a while.
const cleanupWait = time.Minute

// handOverCleanup asks the client that claimed the cleanup to run it, and reports whether it
// did; a client that hangs up or takes too long leaves it to the monitor.
func (m *mon) handOverCleanup(code int) bool {
	m.mu.Lock()
	c := m.claimer
	m.mu.Unlock()
	if c == nil {
		return false
	}
	// Under the lock the client is either still in m.clients with its queue open, or gone
	// (handle removes it under the lock before closing the queue).
	sent := false
	m.mu.Lock()
	if m.clients[c] {
		select {
		case c.out <- append([]byte{FrameCleanupNow}, strconv.Itoa(code)...):
			sent = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	m.mu.Unlock()
	if !sent {
		return false
	}
	select {
	case <-c.cleaned:
		timing.Mark("monitor cleanup handed over")
		return true
	case <-c.done:
	case <-time.After(cleanupWait):
	}
	return false
}

// copyOut starts copying r.outs[i], one output stream of the container, to the log and the
// attached clients. Each read and its copy happen under m.io, and the file is non-blocking:
// the copier waits for data in the poller, holding nothing.
func (m *mon) copyOut(r *run, i int, stream string, frame byte) {
	f := r.outs[i]
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	r.readers.Add(1)
	go func() {
		defer r.readers.Done()
		buf := make([]byte, maxFrame)
		for end := false; !end; {
			err := rc.Read(func(fd uintptr) bool {
				m.io.Lock()
				defer m.io.Unlock()
				n, err := unix.Read(int(fd), buf)
				if err == unix.EAGAIN {
					return false
				}
				if err == unix.EINTR {
					return true
				}
				if n > 0 {
					m.log.Write(stream, buf[:n])
					m.broadcast(frame, buf[:n])
					m.lastIO = time.Now()
					return true
				}
				end = true
				r.outs[i] = nil
				return true
			})
			if err != nil {
				m.io.Lock()
				r.outs[i] = nil
				m.io.Unlock()
				break
			}
		}
		if f != m.console {
			f.Close()
		}
	}()
}

func (m *mon) broadcast(frame byte, p []byte) {
	b := make([]byte, 1+len(p))
	b[0] = frame
	copy(b[1:], p)
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.clients {
		if !c.attached {
			continue
		}
		select {
		case c.out <- b:
		default: // a client that does not read loses output rather than stall the container
		}
	}
}

func (m *mon) kill(sig syscall.Signal) {
	m.mu.Lock()
	in := m.init
	m.mu.Unlock()
	if in != nil {
		_ = in.Signal(sig)
	}
}

// serveOn serves attach connections on the listening socket lfd (made non-blocking: the
// accept loop waits in the poller, and accepts under m.io).
func (m *mon) serveOn(lfd int) {
	_ = unix.SetNonblock(lfd, true)
	m.listener = os.NewFile(uintptr(lfd), AttachSocket)
	rc, err := m.listener.SyscallConn()
	if err != nil {
		return
	}
	go func() {
		for {
			var c *client
			var aerr error
			err := rc.Read(func(fd uintptr) bool {
				m.io.Lock()
				defer m.io.Unlock()
				nfd, _, err := unix.Accept4(int(fd), unix.SOCK_CLOEXEC)
				if err == unix.EAGAIN {
					return false
				}
				if err != nil {
					aerr = err
					return true
				}
				c = &client{fd: nfd, out: make(chan []byte, 256), done: make(chan struct{}), cleaned: make(chan struct{})}
				m.mu.Lock()
				m.clients[c] = true
				m.mu.Unlock()
				m.lastIO = time.Now()
				return true
			})
			if err != nil {
				return
			}
			if c != nil {
				go m.handle(c)
			} else if aerr != unix.EINTR && aerr != unix.ECONNABORTED {
				return
			}
		}
	}()
}

func (m *mon) handle(c *client) {
	defer func() {
		m.io.Lock()
		m.mu.Lock()
		delete(m.clients, c)
		m.mu.Unlock()
		m.lastIO = time.Now()
		m.io.Unlock()
		close(c.out)
		<-c.done
		unix.Close(c.fd)
	}()
	go func() {
		defer close(c.done)
		for b := range c.out {
			if b == nil {
				return
			}
			if _, err := unix.Write(c.fd, b); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, maxFrame+1)
	for {
		typ, p, err := recvFrame(c.fd, buf)
		if err != nil || typ == 0 {
			return
		}
		switch typ {
		case FrameAttach:
			m.mu.Lock()
			c.attached = true
			m.mu.Unlock()
			m.attachOne.Do(func() { close(m.attached) })
		case FrameStdin:
			m.mu.Lock()
			in := m.stdin
			if in == nil && m.cfg.Terminal && m.init == nil && len(m.pending) < 1<<20 {
				m.pending = append(m.pending, p...)
			}
			m.mu.Unlock()
			if in != nil {
				_, _ = in.Write(p)
			}
		case FrameStdinEOF:
			m.mu.Lock()
			if m.stdin != nil && m.stdin != m.console {
				m.stdin.Close()
				m.stdin = nil
			}
			m.mu.Unlock()
		case FrameResize:
			var rows, cols uint16
			if _, err := fmt.Sscanf(string(p), "%d %d", &rows, &cols); err == nil {
				m.mu.Lock()
				if m.console != nil {
					// Through Control, not Fd: Fd would make the master blocking.
					if rc, err := m.console.SyscallConn(); err == nil {
						_ = rc.Control(func(fd uintptr) {
							_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
						})
					}
				}
				m.mu.Unlock()
			}
		case FrameNoRestart:
			m.mu.Lock()
			m.noRestart = true
			m.mu.Unlock()
		case FrameKill:
			if n, err := strconv.Atoi(string(p)); err == nil && n > 0 {
				m.kill(syscall.Signal(n))
			}
		case FrameCleanupClaim:
			m.mu.Lock()
			m.claimer = c
			m.mu.Unlock()
		case FrameCleanupDone:
			m.mu.Lock()
			if m.claimer == c {
				close(c.cleaned)
				m.claimer = nil
			}
			m.mu.Unlock()
		}
	}
}
