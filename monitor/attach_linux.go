package monitor

// The attach socket of a detached container (SOCK_SEQPACKET, "attach" in its run directory),
// served by its monitor. Every packet is one frame: a type byte, then the payload.
//
//	client                                   monitor
//	──────                                   ───────
//	'a' (attach: send me the output) ──────►
//	'i' DATA (to the container's stdin) ───► written to the stdin pipe or the terminal
//	'E' (stdin is at its end) ─────────────► stdin pipe closed
//	'w' ROWS COLS (terminal size) ─────────► TIOCSWINSZ on the master
//	'n' (do not restart it) ───────────────► restart policy suspended (stop, kill, rm -f)
//	'k' SIGNAL (decimal) ──────────────────► kill(init, SIGNAL)
//	'c' (I will clean up after it) ────────► the monitor hands its cleanup to this client
//	                    ◄─────────────────── 'C' STATUS once the container has ended, to the
//	                                           client that claimed the cleanup; it runs it and
//	'd' (cleaned up) ──────────────────────► the monitor skips its own cleanup command (if the
//	                                           client hangs up instead, the monitor runs it)
//	                    ◄─────────────────── 'o' DATA, 'e' DATA (stdout, stderr), to attached clients
//	                    ◄─────────────────── 'x' STATUS (decimal) once the container has ended
//	                                           and its cleanup ran; then the monitor exits and
//	                    ◄─────────────────── EOF
//
// Why SEQPACKET: frames keep their boundaries without a length prefix, and EOF on the
// connection tells a waiting `nook stop` that the monitor — not only the container — is gone.
// The socket's path is reached through /proc/self/fd/N of the run directory, because a run
// directory's path can be longer than the 108 bytes of a socket address.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// AttachSocket is the socket's name in the run directory.
const AttachSocket = "attach"

// Frame types.
const (
	FrameAttach    = 'a'
	FrameStdin     = 'i'
	FrameStdinEOF  = 'E'
	FrameResize    = 'w'
	FrameNoRestart = 'n'
	FrameKill      = 'k'
	FrameStdout    = 'o'
	FrameStderr    = 'e'
	FrameExit      = 'x'
	// The cleanup hand-over: a client that waits for the container's end anyway (stop,
	// rm -f) and has the store open runs the cleanup itself, instead of the monitor starting
	// a whole engine for it.
	FrameCleanupClaim = 'c'
	FrameCleanupNow   = 'C'
	FrameCleanupDone  = 'd'
)

const maxFrame = 32 << 10

// socketAddr returns a short address for dir/name and the directory fd to close afterwards.
func socketAddr(dir string) (*unix.SockaddrUnix, int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d/%s", fd, AttachSocket)}, fd, nil
}

// Listen creates the attach socket in dir.
func Listen(dir string) (int, error) {
	addr, dfd, err := socketAddr(dir)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	_ = os.Remove(filepath.Join(dir, AttachSocket))
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(s, addr); err != nil {
		unix.Close(s)
		return -1, fmt.Errorf("bind attach socket: %w", err)
	}
	if err := unix.Listen(s, 16); err != nil {
		unix.Close(s)
		return -1, fmt.Errorf("listen on attach socket: %w", err)
	}
	return s, nil
}

// ErrNoMonitor is returned by Dial when no monitor listens: the container is not running.
var ErrNoMonitor = errors.New("the container's monitor is not running")

// Conn is a client's connection to a monitor.
type Conn struct{ fd int }

// Dial connects to the monitor of the container whose run directory is dir.
func Dial(dir string) (*Conn, error) {
	addr, dfd, err := socketAddr(dir)
	if err != nil {
		return nil, ErrNoMonitor
	}
	defer unix.Close(dfd)
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(s, addr); err != nil {
		unix.Close(s)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, ErrNoMonitor
		}
		return nil, fmt.Errorf("connect to the container's monitor: %w", err)
	}
	return &Conn{fd: s}, nil
}

// Send sends one frame.
func (c *Conn) Send(typ byte, payload []byte) error { return sendFrame(c.fd, typ, payload) }

// Recv receives one frame; io.EOF-like: typ 0 and err nil at the end.
func (c *Conn) Recv(buf []byte) (typ byte, payload []byte, err error) { return recvFrame(c.fd, buf) }

// Kill asks the monitor to send sig to the container; noRestart first suspends the restart
// policy.
func (c *Conn) Kill(sig int, noRestart bool) error {
	if noRestart {
		if err := c.Send(FrameNoRestart, nil); err != nil {
			return err
		}
	}
	return c.Send(FrameKill, []byte(strconv.Itoa(sig)))
}

// CloseWrite tells the monitor this client sends nothing more.
func (c *Conn) CloseWrite() { _ = unix.Shutdown(c.fd, unix.SHUT_WR) }

// Close closes the connection.
func (c *Conn) Close() { unix.Close(c.fd) }

// Fd is the connection's descriptor, for poll.
func (c *Conn) Fd() int { return c.fd }

// ClaimCleanup tells the monitor that this client will run the cleanup once the container has
// ended (WaitExitCleanup); a monitor that has no cleanup to hand over ignores it.
func (c *Conn) ClaimCleanup() error { return c.Send(FrameCleanupClaim, nil) }

// WaitExit reads frames until the monitor ends and returns the status it sent (-1 if none).
func (c *Conn) WaitExit() int { return c.WaitExitCleanup(nil) }

// WaitExitCleanup is WaitExit that, when the monitor hands over the cleanup (after
// ClaimCleanup), runs cleanup and reports it done.
func (c *Conn) WaitExitCleanup(cleanup func()) int {
	buf := make([]byte, maxFrame+1)
	code := -1
	for {
		typ, p, err := c.Recv(buf)
		if err != nil || typ == 0 {
			return code
		}
		switch typ {
		case FrameExit:
			if n, err := strconv.Atoi(string(p)); err == nil {
				code = n
			}
		case FrameCleanupNow:
			if cleanup != nil {
				cleanup()
				_ = c.Send(FrameCleanupDone, nil)
			}
		}
	}
}

func sendFrame(fd int, typ byte, payload []byte) error {
	b := make([]byte, 1+len(payload))
	b[0] = typ
	copy(b[1:], payload)
	for {
		_, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

func recvFrame(fd int, buf []byte) (byte, []byte, error) {
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if err == unix.ECONNRESET {
				return 0, nil, nil
			}
			return 0, nil, err
		}
		if n == 0 {
			return 0, nil, nil
		}
		return buf[0], buf[1:n], nil
	}
}

// SignalServer serves the attach socket of a container that a foreground `nook run` watches
// itself, without a monitor: it takes FrameKill (FrameNoRestart is accepted: a foreground
// container has no restart policy) and, once the container has ended, sends FrameExit. The
// foreground engine is the parent of the container's init and root of its user namespace, so
// it can signal a payload of any user; another nook's engine, in a sibling user namespace,
// cannot signal one whose user is not nook's own (CAP_KILL does not reach across).
type SignalServer struct {
	dir   string
	lfd   int
	mu    sync.Mutex
	conns map[int]bool
	done  bool
}

// ListenSignals creates the attach socket in dir for a foreground container.
func ListenSignals(dir string) (*SignalServer, error) {
	lfd, err := Listen(dir)
	if err != nil {
		return nil, err
	}
	return &SignalServer{dir: dir, lfd: lfd, conns: map[int]bool{}}, nil
}

// Serve accepts connections and passes the signals they ask for to kill, until Close.
func (s *SignalServer) Serve(kill func(sig syscall.Signal)) {
	for {
		fd, _, err := unix.Accept4(s.lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			if err == unix.EINTR || err == unix.ECONNABORTED {
				continue
			}
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			unix.Close(fd)
			return
		}
		s.conns[fd] = true
		s.mu.Unlock()
		go func() {
			buf := make([]byte, maxFrame+1)
			for {
				typ, p, err := recvFrame(fd, buf)
				if err != nil || typ == 0 {
					break
				}
				if typ == FrameKill {
					if n, err := strconv.Atoi(string(p)); err == nil && n > 0 {
						kill(syscall.Signal(n))
					}
				}
			}
			// The client hung up, or Close shut the connection down.
			s.mu.Lock()
			delete(s.conns, fd)
			unix.Close(fd)
			s.mu.Unlock()
		}()
	}
}

// Close stops accepting, removes the socket and sends code to every connected client, which
// then sees the end of the connection. The caller has recorded the container's end first.
func (s *SignalServer) Close(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	_ = unix.Shutdown(s.lfd, unix.SHUT_RDWR) // wakes the accept loop
	unix.Close(s.lfd)
	_ = os.Remove(filepath.Join(s.dir, AttachSocket))
	exit := []byte(strconv.Itoa(code))
	for fd := range s.conns {
		_ = sendFrame(fd, FrameExit, exit)
		// Wakes the connection's reader, which closes it; the client reads the exit first.
		_ = unix.Shutdown(fd, unix.SHUT_RDWR)
	}
}
