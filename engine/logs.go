package engine

import (
	"io"
	"os"
	"path/filepath"
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
		return nil // never started detached: nothing was logged
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
