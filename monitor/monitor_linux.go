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
	ID          string   `json:"id"`
	Runtime     string   `json:"runtime"` // nook-runtime
	Bundle      string   `json:"config"`  // the container's config.json
	RunDir      string   `json:"runDir"`  // state file, attach socket, network socket
	LogPath     string   `json:"logPath"`
	Terminal    bool     `json:"terminal"`
	Stdin       bool     `json:"stdin"` // -i: keep the container's stdin open for attach
	HostNetwork bool     `json:"hostNetwork"`
	Network     *Network `json:"network,omitempty"` // slirp4netns, when set
	Restart     string   `json:"restart,omitempty"` // "", no, always, on-failure, unless-stopped
	MaxRetries  int      `json:"maxRetries,omitempty"`
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
	cfg  Config
	log  *Log
	mu   sync.Mutex
	init *Init
	// the container's stdin: the write end of its pipe, or the terminal's master
	stdin     *os.File
	console   *os.File
	clients   map[*client]bool
	noRestart bool
	state     State
	cgroup    *os.File
	listener  int           // the attach socket, -1 once closed
	attached  chan struct{} // closed by the first FrameAttach
	stdinR    *os.File      // -i without a terminal: the read end of the container's stdin pipe
	pending   []byte        // input for a terminal not yet there
	attachOne sync.Once
	claimer   *client // the client that will run the cleanup (FrameCleanupClaim)
}

// Run is `nook-runtime monitor CONFIG`: it starts the container, watches it for as long as it
// runs (restarting it as its policy says), and cleans up after it. It returns the exit status
// of the monitor process.
func Run(cfgPath string) int {
	// The init's and slirp4netns' parent-death signal is tied to the thread that started
	// them: this one, for the monitor's whole life.
	goruntime.LockOSThread()
	report := os.NewFile(ReportFd, "report")
	b, err := os.ReadFile(cfgPath)
	var cfg Config
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		sendReport(report, Report{Code: 125, Error: fmt.Sprintf("read monitor config: %v", err)})
		return 125
	}
	m := &mon{cfg: cfg, clients: map[*client]bool{}, attached: make(chan struct{})}
	var st unix.Stat_t
	if unix.Fstat(CgroupFd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		unix.CloseOnExec(CgroupFd)
		m.cgroup = os.NewFile(CgroupFd, "cgroup")
	}
	start := proc.Self()
	m.state = State{MonitorPid: os.Getpid(), MonitorStart: start, Detached: true}
	if m.log, err = OpenLog(cfg.LogPath); err != nil {
		sendReport(report, Report{Code: 125, Error: fmt.Sprintf("open container log: %v", err)})
		return 125
	}
	lfd, err := Listen(cfg.RunDir)
	if err != nil {
		sendReport(report, Report{Code: 125, Error: err.Error()})
		return 125
	}
	m.listener = lfd
	go m.serve(lfd)

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for s := range sigs {
			m.kill(s.(syscall.Signal))
		}
	}()

	if cfg.Stdin && !cfg.Terminal {
		// One pipe for the container's life, restarts included: input sent before the
		// payload runs waits in it.
		r, w, err := os.Pipe()
		if err != nil {
			sendReport(report, Report{Code: 125, Error: err.Error()})
			return 125
		}
		m.stdinR, m.stdin = r, w
	}
	if cfg.WaitAttach {
		select {
		case <-m.attached:
		case <-time.After(time.Minute):
		}
	}
	backoff := 100 * time.Millisecond
	for {
		code, err := m.runOnce(report)
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
		time.Sleep(backoff)
		backoff = min(backoff*2, 10*time.Second)
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

// runOnce starts the container and waits for it to end; report is non-nil on the first start,
// which tells the engine the outcome.
func (m *mon) runOnce(report *os.File) (int, error) {
	var stdin, stdout, stderr *os.File // the init's ends
	var readers sync.WaitGroup
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
		readers.Add(2)
		go m.copyOut(&readers, outR, "stdout", FrameStdout)
		go m.copyOut(&readers, errR, "stderr", FrameStderr)
		stdin = m.stdinR // nil without -i: /dev/null
	}
	var net *slirp.Network
	timing.Mark("monitor start init")
	in, err := StartInit(InitOptions{
		Runtime: m.cfg.Runtime, Config: m.cfg.Bundle, HostNetwork: m.cfg.HostNetwork,
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Cgroup: m.cgroup,
		BeforeGo: func(pid int) error {
			if m.cfg.Network == nil {
				return nil
			}
			c := *m.cfg.Network
			c.Runtime = m.cfg.Runtime
			var err error
			net, err = StartNetwork(&c, pid, m.cfg.RunDir)
			return err
		},
		Listener: func(f *os.File) error { return net.Listener(f) },
	})
	timing.Mark("monitor init started")
	for _, f := range closeAfter {
		f.Close()
	}
	if err != nil {
		if net != nil {
			net.Close()
		}
		readers.Wait()
		m.closeStdin()
		code := 125
		var se *StartError
		if errors.As(err, &se) {
			code = se.Code
		}
		return code, err
	}
	if in.Console != nil {
		readers.Add(1)
		go m.copyOut(&readers, in.Console, "stdout", FrameStdout)
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
	_ = WriteState(m.cfg.RunDir, &st)
	sendReport(report, Report{Pid: in.Pid})
	trimMemory()

	code := in.Wait()
	// Every process of the container is gone with its PID 1 (the kernel kills the rest of a
	// PID namespace): the output pipes reach their end. The terminal's master may linger
	// while an exec'd process holds the slave, so its reader is given a moment only.
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	if net != nil {
		net.Close()
	}
	m.mu.Lock()
	m.init = nil
	m.state.ExitCode, m.state.Finished = code, time.Now().UTC()
	m.mu.Unlock()
	m.closeStdin()
	return code, nil
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
	m.mu.Lock()
	if m.listener >= 0 {
		_ = unix.Shutdown(m.listener, unix.SHUT_RDWR) // wakes the accept loop
		unix.Close(m.listener)
		m.listener = -1
	}
	m.mu.Unlock()
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

// copyOut copies one output stream of the container to the log and the attached clients.
func (m *mon) copyOut(wg *sync.WaitGroup, f *os.File, stream string, frame byte) {
	defer wg.Done()
	buf := make([]byte, maxFrame)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			m.log.Write(stream, buf[:n])
			m.broadcast(frame, buf[:n])
		}
		if err != nil {
			if f != m.console {
				f.Close()
			}
			return
		}
	}
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

// serve accepts attach connections.
func (m *mon) serve(lfd int) {
	for {
		fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			if err == unix.EINTR || err == unix.ECONNABORTED {
				continue
			}
			return
		}
		c := &client{fd: fd, out: make(chan []byte, 256), done: make(chan struct{}), cleaned: make(chan struct{})}
		m.mu.Lock()
		m.clients[c] = true
		m.mu.Unlock()
		go m.handle(c)
	}
}

func (m *mon) handle(c *client) {
	defer func() {
		m.mu.Lock()
		delete(m.clients, c)
		m.mu.Unlock()
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
					_ = unix.IoctlSetWinsize(int(m.console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
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
