package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `nook logs` of a detached container: its stdout and stderr, kept by the monitor.

func TestLogs(t *testing.T) {
	s := useMain(t)
	name := "lg" + strconv.Itoa(os.Getpid())
	// "partial" is read while its line is still open: it is logged as a partial line.
	runDetached(t, s, "--name", name, "demo", "sh", "-c", `for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; printf partial; sleep 0.5; echo -end; `+termTrap)
	waitLog(t, s, name, "ready", 10*time.Second)
	r := s.nook(t, "logs", name)
	assertExit(t, r, 0)
	assertEqual(t, "logs stdout", r.Stdout, "line1\nline2\nline3\nline4\nline5\npartial-end\nready\n")
	assertEqual(t, "logs stderr", r.Stderr, "oops\n")
	assertEqual(t, "logs --tail 2", s.nook(t, "logs", "--tail", "2", name).Stdout, "partial-end\nready\n")
	assertEqual(t, "logs --tail 0", s.mustNook(t, "logs", "--tail", "0", name).Stdout, "")
	ts := s.nook(t, "logs", "-t", "--tail", "1", name).Stdout
	assertMatch(t, "logs -t", ts, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ready\n$`)
	r = s.nook(t, "logs", "--tail", "x", name)
	assertExit(t, r, 125)

	// The log file is in the k8s-file format: TIME STREAM F|P TEXT.
	id := strings.TrimSpace(s.mustNook(t, "inspect", "--format", "{{.LogPath}}", name).Stdout)
	b, err := os.ReadFile(id)
	if err != nil {
		t.Fatalf("read the log file: %v", err)
	}
	line := regexp.MustCompile(`^\d{4}-\d\d-\d\dT[\d:.]+Z (stdout|stderr) [FP] `)
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !line.MatchString(l) {
			t.Errorf("log line %q is not TIME STREAM F|P TEXT", l)
		}
	}
	assertContains(t, "log file", string(b), " stderr F oops\n")
	assertContains(t, "log file", string(b), " stdout P partial\n")
	s.mustNook(t, "stop", name)
	assertContains(t, "logs after stop", s.nook(t, "logs", name).Stdout, "got-term\n")
}

// logs -f follows the output until the container ends.
func TestLogsFollow(t *testing.T) {
	s := useMain(t)
	name := "lgf" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "demo", "sh", "-c", `echo first; sleep 1; echo second; sleep 1; echo third`)
	start := time.Now()
	r := s.mustNook(t, "logs", "-f", name)
	assertEqual(t, "logs -f", r.Stdout, "first\nsecond\nthird\n")
	if d := time.Since(start); d < 1*time.Second {
		t.Errorf("logs -f returned after %v, before the container ended", d)
	}
}

// logs --since and --until: RFC 3339 times (as logs -t prints them), Unix timestamps and
// durations before now, alone and with --tail and -f.
func TestLogsSinceUntil(t *testing.T) {
	s := useMain(t)
	name := "lgs" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "--network", "none", "demo", "sh", "-c", `echo one; sleep 0.3; echo two; sleep 0.1; echo err2 >&2; sleep 0.3; echo three`)
	s.mustNook(t, "wait", name)
	r := s.nook(t, "logs", "-t", name)
	assertExit(t, r, 0)
	var times []string // the time of one, two, three
	for _, l := range r.Lines() {
		ts, _, _ := strings.Cut(l, " ")
		times = append(times, ts)
	}
	if len(times) != 3 {
		t.Fatalf("logs -t: %q, want three lines", r.Stdout)
	}
	t2, err := time.Parse(time.RFC3339Nano, times[1])
	if err != nil {
		t.Fatalf("logs -t time %q: %v", times[1], err)
	}
	unix2 := fmt.Sprintf("%d.%09d", t2.Unix(), t2.Nanosecond())
	logs := func(args ...string) (string, string) {
		t.Helper()
		r := s.nook(t, append(append([]string{"logs"}, args...), name)...)
		assertExit(t, r, 0)
		return r.Stdout, r.Stderr
	}
	for _, c := range []struct {
		args           []string
		stdout, stderr string
	}{
		{[]string{"--since", times[1]}, "two\nthree\n", "err2\n"},
		{[]string{"--until", times[1]}, "one\ntwo\n", ""},
		{[]string{"--since", times[1], "--until", times[1]}, "two\n", ""},
		{[]string{"--since", times[2]}, "three\n", ""},
		{[]string{"--since", unix2}, "two\nthree\n", "err2\n"},
		{[]string{"--until", strconv.FormatInt(t2.Unix()-1, 10)}, "", ""},
		{[]string{"--since", "1h"}, "one\ntwo\nthree\n", "err2\n"},
		{[]string{"--until", "1h"}, "", ""},
		{[]string{"--since", "2000-01-01"}, "one\ntwo\nthree\n", "err2\n"},
		{[]string{"--tail", "1", "--until", times[1]}, "two\n", ""},
		{[]string{"--tail", "5", "--since", times[2]}, "three\n", ""},
		{[]string{"-f", "--since", times[1]}, "two\nthree\n", "err2\n"},
	} {
		stdout, stderr := logs(c.args...)
		assertEqual(t, "logs "+strings.Join(c.args, " ")+" stdout", stdout, c.stdout)
		assertEqual(t, "logs "+strings.Join(c.args, " ")+" stderr", stderr, c.stderr)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--until", "2024-13-01"}, {"--since", "10x"}} {
		r := s.nook(t, append(append([]string{"logs"}, bad...), name)...)
		assertExit(t, r, 125)
		assertErrorLine(t, r, bad[0], "invalid time")
	}

	// -f --until a moment ahead: it follows a running container until then, and stops.
	tick := name + "t"
	runDetached(t, s, "--name", tick, "--network", "none", "demo", "sh", "-c", `while :; do echo tick; sleep 0.1; done`)
	waitLog(t, s, tick, "tick", 10*time.Second)
	until := time.Now().Add(1500 * time.Millisecond)
	start := time.Now()
	r = s.mustNook(t, "logs", "-f", "-t", "--until", until.UTC().Format(time.RFC3339Nano), tick)
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Errorf("logs -f --until 1.5 s ahead returned after %v", d)
	}
	lines := r.Lines()
	if len(lines) < 5 {
		t.Errorf("logs -f --until: %d lines, want the ticks of 1.5 s", len(lines))
	}
	for _, l := range lines {
		ts, _, _ := strings.Cut(l, " ")
		if tt, err := time.Parse(time.RFC3339Nano, ts); err != nil || tt.After(until) {
			t.Errorf("logs -f --until %s printed %q", until.UTC().Format(time.RFC3339Nano), l)
		}
	}
	// -f --since a duration: only the recent ticks, and it follows until the container ends.
	go func() {
		time.Sleep(time.Second)
		s.exec(context.Background(), nil, "", "stop", "-t", "0", tick)
	}()
	since := time.Now().Add(-300 * time.Millisecond)
	r = s.mustNook(t, "logs", "-f", "-t", "--since", "300ms", tick)
	if len(r.Lines()) < 3 {
		t.Errorf("logs -f --since 300ms until the container stopped: %q", r.Stdout)
	}
	for _, l := range r.Lines() {
		ts, _, _ := strings.Cut(l, " ")
		if tt, err := time.Parse(time.RFC3339Nano, ts); err != nil || tt.Before(since.Add(-time.Second)) {
			t.Errorf("logs -f --since 300ms printed %q, older than %s", l, since.UTC().Format(time.RFC3339Nano))
		}
	}
}

// A terminal's output is logged as stdout, and attach + Ctrl-P Ctrl-Q leaves it running.
func TestLogsTerminalAndAttach(t *testing.T) {
	s := useMain(t)
	name := "lgt" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "-it", "demo", "sh")
	master, slave := openPty(t)
	defer master.Close()
	setWinsize(t, master, 24, 80)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := exec_(ctx, s, "attach", name)
	out, _ := startOnPty(t, cmd, master, slave)
	time.Sleep(300 * time.Millisecond)
	if _, err := master.Write([]byte("echo A''TTACHED; stty size\r")); err != nil {
		t.Fatal(err)
	}
	if !out.waitFor("ATTACHED", 10*time.Second) {
		_ = cmd.Process.Kill()
		t.Fatalf("no output through nook attach:\n%s", out.String())
	}
	out.waitFor("24 80", 5*time.Second)
	assertContains(t, "window size through attach", out.String(), "24 80")
	if _, err := master.Write([]byte{0x10, 0x11}); err != nil { // Ctrl-P Ctrl-Q
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("nook attach after Ctrl-P Ctrl-Q: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("Ctrl-P Ctrl-Q did not detach")
	}
	assertMatch(t, "STATUS after detaching", psStatus(t, s, name), "^Up ")
	assertContains(t, "terminal output in the log", s.mustNook(t, "logs", name).Stdout, "ATTACHED")
	s.mustNook(t, "rm", "-f", name)
}

// nook run -it, Ctrl-P Ctrl-Q: the container runs on (a monitor watches it), and nook attach
// comes back to it until it ends.
func TestLogsRunInteractiveDetach(t *testing.T) {
	s := useMain(t)
	name := "lgd" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", name) })
	out, err := drivePty(t, s, []string{"run", "-it", "--name", name, "demo", "sh"}, func(master *os.File, out *ptyOutput) {
		_, _ = master.Write([]byte("echo F''IRST\r"))
		if !out.waitFor("FIRST", 10*time.Second) {
			t.Errorf("no output from nook run -it:\n%s", out.String())
		}
		_, _ = master.Write([]byte{0x10, 0x11})
	})
	if err != nil {
		t.Errorf("nook run -it after Ctrl-P Ctrl-Q: %v, want exit 0\n%s", err, out.String())
	}
	assertMatch(t, "STATUS after detaching from run -it", psStatus(t, s, name), "^Up ")
	_, err = drivePty(t, s, []string{"attach", name}, func(master *os.File, out *ptyOutput) {
		time.Sleep(200 * time.Millisecond)
		_, _ = master.Write([]byte("echo S''ECOND; exit 6\r"))
		if !out.waitFor("SECOND", 10*time.Second) {
			t.Errorf("no output through nook attach:\n%s", out.String())
		}
	})
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 6 {
		t.Errorf("nook attach until the shell exits 6: %v", err)
	}
	assertMatch(t, "STATUS after exit", psStatus(t, s, name), `^Exited \(6\)`)
}

// The output of a foreground `nook run` goes to the user and to the container's log, which
// `nook logs` reads afterwards as it does a detached container's.
func TestLogsForegroundRun(t *testing.T) {
	s := useMain(t)
	name := "lgr" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", name) })
	r := s.nook(t, "run", "--name", name, "--network", "none", "demo", "sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 3")
	assertExit(t, r, 3)
	assertEqual(t, "run stdout", r.Stdout, "out1\nout2\n")
	assertEqual(t, "run stderr", r.Stderr, "err1\n")
	r = s.nook(t, "logs", name)
	assertExit(t, r, 0)
	assertEqual(t, "logs stdout after a foreground run", r.Stdout, "out1\nout2\n")
	assertEqual(t, "logs stderr after a foreground run", r.Stderr, "err1\n")
	// A later start (with a monitor) appends to the same log.
	assertExit(t, s.nook(t, "start", "-a", name), 3)
	assertEqual(t, "logs after start", s.nook(t, "logs", name).Stdout, "out1\nout2\nout1\nout2\n")

	// When nook's reader goes away, the container's writes fail as they would without the
	// log in between: `nook run demo yes | head -c 10` ends (busybox's yes exits 1 on EPIPE).
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	yes := name + "y"
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", yes) })
	cmd := s.command(ctx, nil, "run", "--name", yes, "--network", "none", "demo", "yes")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 10)
	if _, err := io.ReadFull(out, b); err != nil {
		t.Fatalf("read the output of nook run demo yes: %v", err)
	}
	out.Close()
	err = cmd.Wait()
	if ctx.Err() != nil || cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("nook run demo yes with its output closed: %v, want exit 1 (yes: broken pipe) before the timeout", err)
	}
}
