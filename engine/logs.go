package engine

import (
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nook-containers/nook/monitor"
)

// LogsOptions are `nook logs`' flags.
type LogsOptions struct {
	Follow     bool
	Tail       int // lines from the end; < 0 all
	Timestamps bool
}

// Logs writes a container's log: stdout lines to stdout, stderr lines to stderr. With Follow it
// keeps reading until the container's monitor has ended.
func (e *Engine) Logs(ref string, o LogsOptions, stdout, stderr io.Writer) error {
	c, err := e.FindContainer(ref)
	if err != nil {
		return err
	}
	dir, err := e.Store.ContainerDirectory(c.ID)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(dir, monitor.LogFile))
	if os.IsNotExist(err) {
		return nil // never started: nothing was logged
	}
	if err != nil {
		return err
	}
	defer f.Close()
	emit := func(l monitor.LogLine) {
		w := stdout
		if l.Stream == "stderr" {
			w = stderr
		}
		b := make([]byte, 0, len(l.Text)+40)
		if o.Timestamps {
			b = append(b, l.Time...)
			b = append(b, ' ')
		}
		b = append(b, l.Text...)
		if !l.Partial {
			b = append(b, '\n')
		}
		_, _ = w.Write(b)
	}
	if o.Tail >= 0 {
		// A line is its partial pieces (P) and the piece that ends it (F): --tail counts lines.
		// Each stream has its own open line: stdout and stderr interleave.
		var lines [][]monitor.LogLine
		open := map[string][]monitor.LogLine{}
		n, err := monitor.ReadLog(f, func(l monitor.LogLine) {
			open[l.Stream] = append(open[l.Stream], l)
			if l.Partial {
				return
			}
			lines = append(lines, open[l.Stream])
			delete(open, l.Stream)
			if len(lines) > 2*o.Tail+64 {
				lines = append(lines[:0], lines[len(lines)-o.Tail:]...)
			}
		})
		if err != nil {
			return err
		}
		for _, stream := range []string{"stdout", "stderr"} {
			if open[stream] != nil {
				lines = append(lines, open[stream])
			}
		}
		if len(lines) > o.Tail {
			lines = lines[len(lines)-o.Tail:]
		}
		for _, pieces := range lines {
			for _, l := range pieces {
				emit(l)
			}
		}
		if _, err := f.Seek(n, io.SeekStart); err != nil {
			return err
		}
	} else {
		n, err := monitor.ReadLog(f, emit)
		if err != nil {
			return err
		}
		if _, err := f.Seek(n, io.SeekStart); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	off, _ := f.Seek(0, io.SeekCurrent)
	for {
		st := e.stateOf(c.ID)
		alive := st.MonitorAlive()
		n, err := monitor.ReadLog(f, emit)
		if err != nil {
			return err
		}
		off += n
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return err
		}
		if !alive {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// openLog opens (appends to) a container's log, the file its monitor writes.
func (e *Engine) openLog(id string) (*monitor.Log, error) {
	dir, err := e.Store.ContainerDirectory(id)
	if err != nil {
		return nil, err
	}
	return monitor.OpenLog(filepath.Join(dir, monitor.LogFile))
}

// outputTee copies the output of a container that a foreground `nook run` watches to the
// user's stdout and stderr and to the container's log, through one pipe per stream.
type outputTee struct {
	ends   []*os.File // the container's write ends, until its init has them
	copied sync.WaitGroup
}

// pipe returns the write end to give the init for one stream, copied to to and to log.
func (t *outputTee) pipe(to *os.File, log *monitor.Log, stream string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	t.ends = append(t.ends, w)
	t.copied.Add(1)
	go func() {
		defer t.copied.Done()
		defer r.Close()
		copyLogged(to, r, log, stream)
	}()
	return w, nil
}

// started closes this process's write ends, once the init has its own (or will not start).
func (t *outputTee) started() {
	for _, f := range t.ends {
		f.Close()
	}
	t.ends = nil
}

// wait lets the copies finish after the init has ended: every process of the container ends
// with it (its PID namespace), so the pipes reach their end; the bound is a safeguard.
func (t *outputTee) wait() {
	done := make(chan struct{})
	go func() { t.copied.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// copyLogged copies r to w and to log as stream until r ends or w fails. After a failed write
// (the reader of nook's output has gone) the caller closes r, so that the container's own
// writes fail as they would have on w.
func copyLogged(w io.Writer, r io.Reader, log *monitor.Log, stream string) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			log.Write(stream, buf[:n])
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
