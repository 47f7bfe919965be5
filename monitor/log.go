package monitor

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// LogFile is a container's log file name, in its container directory.
const LogFile = "ctr.log"

// Log writes a container's output in the k8s-file format that CRI-O and Podman use, one line
// per line of output: "TIMESTAMP STREAM TAG TEXT", TIMESTAMP in RFC 3339 with nanoseconds,
// STREAM stdout or stderr, TAG F for a full line or P for a partial one (a line still open when
// the output was read, or one longer than a read).
type Log struct {
	mu sync.Mutex
	f  *os.File
}

// OpenLog opens (appends to) the log file at path.
func OpenLog(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	return &Log{f: f}, nil
}

// Write logs one chunk of output of stream ("stdout" or "stderr").
func (l *Log) Write(stream string, p []byte) {
	if l == nil || len(p) == 0 {
		return
	}
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	var b bytes.Buffer
	for len(p) > 0 {
		line, rest, full := bytes.Cut(p, []byte{'\n'})
		tag := " P "
		if full {
			tag = " F "
		}
		b.WriteString(ts + " " + stream + tag)
		b.Write(line)
		b.WriteByte('\n')
		p = rest
	}
	l.mu.Lock()
	_, _ = l.f.Write(b.Bytes())
	l.mu.Unlock()
}

// Close closes the file.
func (l *Log) Close() {
	if l != nil {
		l.f.Close()
	}
}

// LogLine is one parsed line of a log file.
type LogLine struct {
	Time    string // as written
	Stream  string
	Partial bool
	Text    []byte
}

// ParseLogLine reads one line (without its newline); ok is false for a malformed one.
func ParseLogLine(line []byte) (l LogLine, ok bool) {
	f := bytes.SplitN(line, []byte{' '}, 4)
	if len(f) < 3 {
		return l, false
	}
	l.Time, l.Stream, l.Partial = string(f[0]), string(f[1]), string(f[2]) == "P"
	if len(f) == 4 {
		l.Text = f[3]
	}
	return l, true
}

// ReadLog calls fn for each whole line of r from its current offset and returns how many bytes
// it consumed (a last line without its newline is left for later, as it may still be written).
func ReadLog(r io.Reader, fn func(LogLine)) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var n int64
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			if err == io.EOF {
				return n, nil
			}
			return n, err
		}
		n += int64(len(line))
		if l, ok := ParseLogLine(line[:len(line)-1]); ok {
			fn(l)
		}
	}
}
