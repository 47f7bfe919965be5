package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/nook-containers/nook/monitor"
)

// ErrDetached is returned by an attach that the user left with the detach keys.
var ErrDetached = errors.New("detached")

// AttachOptions are an attached client's streams.
type AttachOptions struct {
	Stdin          *os.File // nil: no input
	Stdout, Stderr *os.File
	TTY            bool // the container has a terminal: raw mode, resizes, detach keys
	// DetachKeys is the sequence that detaches (monitor.ParseDetachKeys); nil cannot detach.
	DetachKeys []byte
}

// Attach is `nook attach`: it connects the user's streams to a running container until the
// container ends (its status is returned) or the user detaches (ErrDetached).
func (e *Engine) Attach(ref string, noStdin bool, o AttachOptions) (int, error) {
	c, err := e.FindContainer(ref)
	if err != nil {
		return 125, err
	}
	if c.State != StateRunning {
		return 125, fmt.Errorf("container %s is not running: start it with nook start -a %s", ref, ref)
	}
	if st := e.stateOf(c.ID); st != nil && !st.Detached {
		return 125, fmt.Errorf("container %s runs in the foreground of the nook run that started it, which has its output: it cannot be attached", ref)
	}
	conn, err := e.dialMonitor(c)
	if err != nil {
		return 125, fmt.Errorf("container %s cannot be attached: %w", ref, err)
	}
	defer conn.Close()
	if c.Options != nil {
		o.TTY = c.Options.TTY
		if !c.Options.Interactive || noStdin {
			o.Stdin = nil
		}
	}
	return attachClient(conn, o)
}

// attachClient runs the client side of the attach protocol (monitor/attach_linux.go).
func attachClient(conn *monitor.Conn, o AttachOptions) (int, error) {
	if err := conn.Send(monitor.FrameAttach, nil); err != nil {
		return 125, err
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGWINCH, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	resize := func() {
		for _, f := range []*os.File{o.Stdin, o.Stdout} {
			if f == nil {
				continue
			}
			if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
				_ = conn.Send(monitor.FrameResize, fmt.Appendf(nil, "%d %d", ws.Row, ws.Col))
				return
			}
		}
	}
	if o.TTY {
		resize()
		if o.Stdin != nil && term.IsTerminal(int(o.Stdin.Fd())) {
			if st, err := term.MakeRaw(int(o.Stdin.Fd())); err == nil {
				defer func() { _ = term.Restore(int(o.Stdin.Fd()), st) }()
			}
		}
	}
	detached := make(chan struct{})
	if o.Stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			var keys []byte
			if o.TTY {
				keys = o.DetachKeys // Docker's detach keys work on a terminal only
			}
			m := monitor.NewDetachMatcher(keys)
			for {
				n, err := o.Stdin.Read(buf)
				p, detach := m.Feed(buf[:n])
				if len(p) > 0 {
					if conn.Send(monitor.FrameStdin, p) != nil {
						return
					}
				}
				if detach {
					close(detached)
					return
				}
				if err != nil {
					if p := m.Flush(); len(p) > 0 {
						_ = conn.Send(monitor.FrameStdin, p)
					}
					if err == io.EOF {
						_ = conn.Send(monitor.FrameStdinEOF, nil)
					}
					return
				}
			}
		}()
	}
	type frame struct {
		typ byte
		p   []byte
	}
	frames := make(chan frame, 64)
	go func() {
		defer close(frames)
		for {
			buf := make([]byte, 64<<10)
			typ, p, err := conn.Recv(buf)
			if err != nil || typ == 0 {
				return
			}
			frames <- frame{typ, p}
		}
	}()
	code := -1
	for {
		select {
		case <-detached:
			return 0, ErrDetached
		case s := <-sigs:
			if s == syscall.SIGWINCH {
				if o.TTY {
					resize()
				}
				continue
			}
			_ = conn.Kill(int(s.(syscall.Signal)), false)
		case f, ok := <-frames:
			if !ok {
				if code < 0 {
					return 125, errors.New("the container's monitor ended without an exit status")
				}
				return code, nil
			}
			switch f.typ {
			case monitor.FrameStdout:
				_, _ = o.Stdout.Write(f.p)
			case monitor.FrameStderr:
				_, _ = o.Stderr.Write(f.p)
			case monitor.FrameExit:
				fmt.Sscan(string(f.p), &code)
			}
		}
	}
}
