package engine

import (
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/nook-containers/nook/monitor"
)

// consoleProxy copies between the user's terminal and the container's pseudo-terminal master.
type consoleProxy struct {
	master   *os.File
	in       *os.File // the user's terminal (or whatever stdin is), nil without -i
	out      *os.File
	oldState *term.State
	copied   sync.WaitGroup
}

// startConsole proxies the container's terminal; its output goes to log too, when not nil.
func startConsole(master *os.File, o RunOptions, log *monitor.Log) *consoleProxy {
	c := &consoleProxy{master: master, out: o.Stdout}
	if o.Interactive {
		c.in = o.Stdin
		if term.IsTerminal(int(c.in.Fd())) {
			if st, err := term.MakeRaw(int(c.in.Fd())); err == nil {
				c.oldState = st
			}
		}
	}
	c.resize()
	c.copied.Add(1)
	go func() {
		defer c.copied.Done()
		if log == nil {
			_, _ = io.Copy(c.out, master) // ends with EIO when the last slave fd closes
			return
		}
		copyLogged(c.out, master, log, "stdout")
	}()
	if c.in != nil {
		go func() { _, _ = io.Copy(master, c.in) }()
	}
	return c
}

// resize copies the user's window size to the container's terminal.
func (c *consoleProxy) resize() {
	if c == nil {
		return
	}
	for _, f := range []*os.File{c.in, c.out} {
		if f == nil {
			continue
		}
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			_ = unix.IoctlSetWinsize(int(c.master.Fd()), unix.TIOCSWINSZ, ws)
			return
		}
	}
}

// finish drains the container's output and gives the user's terminal back.
func (c *consoleProxy) finish() {
	c.copied.Wait()
	if c.oldState != nil {
		_ = term.Restore(int(c.in.Fd()), c.oldState)
	}
	c.master.Close()
}
