package monitor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nook-containers/nook/internal/proc"
)

func TestLogWriteAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogFile)
	l, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Write("stdout", []byte("one\ntwo\npart"))
	l.Write("stderr", []byte("err\n"))
	l.Write("stdout", []byte("ial\n"))
	l.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	n, err := ReadLog(f, func(l LogLine) {
		if _, err := time.Parse(time.RFC3339Nano, l.Time); err != nil {
			t.Errorf("time %q: %v", l.Time, err)
		}
		tag := "F"
		if l.Partial {
			tag = "P"
		}
		got = append(got, l.Stream+" "+tag+" "+string(l.Text))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"stdout F one", "stdout F two", "stdout P part", "stderr F err", "stdout F ial"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	if st, _ := f.Stat(); n != st.Size() {
		t.Errorf("consumed %d of %d bytes", n, st.Size())
	}
}

func TestReadLogLeavesAnOpenLine(t *testing.T) {
	var lines int
	n, err := ReadLog(bytes.NewBufferString("2026-01-01T00:00:00Z stdout F a\n2026-01-01T00:00:00Z stdout F b"), func(LogLine) { lines++ })
	if err != nil || lines != 1 || n != int64(len("2026-01-01T00:00:00Z stdout F a\n")) {
		t.Errorf("ReadLog: %d lines, %d bytes, %v", lines, n, err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if s, err := ReadState(dir); s != nil || err != nil {
		t.Fatalf("no state file: got %v, %v", s, err)
	}
	start, _, err := proc.Start(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	in := State{Status: StatusRunning, MonitorPid: os.Getpid(), MonitorStart: start, Pid: 42, ExitCode: 3}
	if err := WriteState(dir, &in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadState(dir)
	if err != nil || out.Pid != 42 || out.Status != StatusRunning || !out.MonitorAlive() {
		t.Errorf("read back %+v, %v", out, err)
	}
	out.MonitorStart = "1"
	if out.MonitorAlive() {
		t.Error("a pid whose start time differs is not the monitor")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("WriteState left %d files, want only %s", len(ents), StateFile)
	}
}
