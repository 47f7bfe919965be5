package engine

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nook-containers/nook/monitor"
)

// LogsOptions are `nook logs`' flags.
type LogsOptions struct {
	Follow     bool
	Tail       int // lines from the end; < 0 all
	Timestamps bool
	// Since and Until bound the lines by their time (zero: no bound), both ends included.
	// --tail counts the lines within the bounds; a follow ends once Until has passed.
	Since, Until time.Time
}

// ParseLogTime reads --since and --until as Docker does: a duration before now (10m, 1h30m),
// an RFC 3339 time (2006-01-02T15:04:05Z07:00, with or without seconds, fractions or zone; a
// time without a zone is local), a date (2006-01-02), or a Unix timestamp with optional
// fraction (1704207845.5).
func ParseLogTime(value string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(value); value != "0" && err == nil {
		return now.Add(-d), nil
	}
	// Docker's rule (moby's api/types/time GetTimestamp): a time with Z, + or a -HH:MM offset
	// (three dashes) carries its zone; any other is in the local zone.
	inLocal := !strings.ContainsAny(value, "zZ+") && strings.Count(value, "-") != 3
	var format string
	switch {
	case strings.Contains(value, "."):
		format = time.RFC3339Nano
		if inLocal {
			format = "2006-01-02T15:04:05.999999999"
		}
	case strings.Contains(value, "T"):
		colons := strings.Count(value, ":")
		if !inLocal && !strings.ContainsAny(value, "zZ") && colons > 0 {
			colons-- // the zone's offset has one
		}
		format = [3]string{"2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05"}[min(colons, 2)]
		if !inLocal {
			format += "Z07:00"
		}
	case inLocal:
		format = "2006-01-02"
	default:
		format = "2006-01-02Z07:00"
	}
	var t time.Time
	var err error
	if inLocal {
		t, err = time.ParseInLocation(format, value, now.Location())
	} else {
		t, err = time.Parse(format, value)
	}
	if err == nil {
		return t, nil
	}
	if !strings.Contains(value, "-") {
		if t, ok := parseUnixTime(value); ok {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q: give a duration before now (10m, 1h30m), an RFC 3339 time (2006-01-02T15:04:05Z) or a Unix timestamp (1136214245)", value)
}

// parseUnixTime reads SECONDS[.FRACTION].
func parseUnixTime(value string) (time.Time, bool) {
	sec, frac, hasFrac := strings.Cut(value, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || (hasFrac && frac == "") {
		return time.Time{}, false
	}
	var ns int64
	if hasFrac {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		n, err := strconv.ParseUint(frac, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		ns = int64(n) * int64(math.Pow10(9-len(frac)))
	}
	return time.Unix(s, ns), true
}

// within tells whether a log line's time is inside o's bounds; a line whose time cannot be
// read is kept.
func (o *LogsOptions) within(l monitor.LogLine) bool {
	if o.Since.IsZero() && o.Until.IsZero() {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		return true
	}
	return !t.Before(o.Since) && (o.Until.IsZero() || !t.After(o.Until))
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
		if !o.within(l) {
			return
		}
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
			if !o.within(l) {
				return
			}
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
		if !alive || (!o.Until.IsZero() && time.Now().After(o.Until)) {
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
