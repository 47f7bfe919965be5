package e2e

// A detached container's monitor execs nook-idle once the container is quiet and comes back to
// Go on any activity (docs/architecture.md). Each test first waits until the monitor *is*
// nook-idle (its /proc/PID/exe), so it fails when the idle path is not taken, then wakes it in
// one way and checks the outcome.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// quiet prints a line each time a file appears (made by `nook exec`), and nothing otherwise.
const quiet = `trap 'echo got-usr1' USR1; echo ready; while :; do if [ -e /tmp/go ]; then rm /tmp/go; echo tick; fi; sleep 0.2 & wait $!; done`

// monitorOf returns the pid of the monitor of the container name (its init's parent).
func monitorOf(t *testing.T, s *store, name string) int {
	t.Helper()
	_, _, pid, _ := inspectState(t, s, name)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("the container's init (pid %d): %v", pid, err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// monitorExe is the file name of what the monitor pid runs now.
func monitorExe(pid int) string {
	p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return filepath.Base(p)
}

// waitIdle waits until the monitor of name runs nook-idle and returns its pid.
func waitIdle(t *testing.T, s *store, name string) int {
	t.Helper()
	mon := monitorOf(t, s, name)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if monitorExe(mon) == "nook-idle" {
			return mon
		}
	}
	t.Fatalf("the monitor (pid %d) of %s did not become nook-idle within 15s; it runs %q", mon, name, monitorExe(mon))
	return 0
}

// Output, logs -f across the transition, exec, a signal, attach and detach: each wakes the idle
// monitor, which does its work in Go and goes idle again.
func TestIdleMonitorWakes(t *testing.T) {
	s := useMain(t)
	name := "idw" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "--network", "none", "demo", "sh", "-c", quiet)
	waitLog(t, s, name, "ready", 10*time.Second)
	mon := waitIdle(t, s, name)

	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	follow := s.command(ctx, nil, "logs", "-f", name)
	var followed bytes.Buffer
	follow.Stdout = &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = follow.Process.Kill(); _ = follow.Wait() })

	// exec works against an idle monitor (it does not go through it); the output it causes
	// wakes the monitor, which logs it.
	assertEqual(t, "exec in an idle container", s.mustNook(t, "exec", name, "sh", "-c", "touch /tmp/go && echo done").Stdout, "done\n")
	waitLog(t, s, name, "tick", 10*time.Second)
	assertEqual(t, "monitor pid across the idle cycle", monitorOf(t, s, name), mon)
	waitIdle(t, s, name)

	s.mustNook(t, "kill", "-s", "USR1", name)
	waitLog(t, s, name, "got-usr1", 10*time.Second)
	waitIdle(t, s, name)

	// attach wakes it and keeps it in Go while attached: output reaches the client.
	attach := s.command(ctx, nil, "attach", "--no-stdin", name)
	var attached bytes.Buffer
	attach.Stdout = &attached
	if err := attach.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // longer than the idle delay: a connected client keeps it awake
	if exe := monitorExe(mon); exe == "nook-idle" {
		t.Errorf("the monitor went idle with a client attached")
	}
	s.mustNook(t, "exec", name, "touch", "/tmp/go")
	for deadline := time.Now().Add(10 * time.Second); strings.Count(attached.String(), "tick") < 1 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	assertContains(t, "output through attach", attached.String(), "tick")
	// The client goes away: the engine that holds the connection (a child of the lean CLI, in
	// a process group of its own), then the CLI.
	for p := range userProcs() {
		if isAncestor(attach.Process.Pid, p) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	_ = attach.Process.Kill()
	_ = attach.Wait()
	waitIdle(t, s, name)
	assertMatch(t, "STATUS after attach", psStatus(t, s, name), "^Up ")

	_ = follow.Process.Signal(syscall.SIGINT)
	_ = follow.Wait()
	for _, want := range []string{"ready", "tick", "got-usr1"} {
		assertContains(t, "logs -f across idle periods", followed.String(), want)
	}
	assertEqual(t, "ticks in the log", strings.Count(s.mustNook(t, "logs", name).Stdout, "tick"), 2)
	s.mustNook(t, "rm", "-f", name)
}

// stop -t of a payload that ignores SIGTERM, and a payload's own exit, while the monitor idles.
func TestIdleMonitorStopAndExit(t *testing.T) {
	s := useMain(t)
	name := "ids" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "--network", "none", "demo", "sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`)
	waitLog(t, s, name, "ready", 10*time.Second)
	waitIdle(t, s, name)
	t0 := time.Now()
	s.mustNook(t, "stop", "-t", "2", name)
	if d := time.Since(t0); d < 2*time.Second || d > 10*time.Second {
		t.Errorf("stop -t 2 of a payload that ignores SIGTERM took %v, want about 2s", d)
	}
	waitStatus(t, s, name, `^Exited \(137\)`, 10*time.Second)

	exit := "ide" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", exit, "--network", "none", "demo", "sh", "-c", "echo ready; sleep 3; echo bye; exit 7")
	waitLog(t, s, exit, "ready", 10*time.Second)
	waitIdle(t, s, exit)
	waitStatus(t, s, exit, `^Exited \(7\)`, 15*time.Second)
	_, running, _, code := inspectState(t, s, exit)
	assertEqual(t, "State.Running", running, false)
	assertEqual(t, "State.ExitCode", code, 7)
	assertContains(t, "last words in the log", s.mustNook(t, "logs", exit).Stdout, "bye")
	r := s.mustNook(t, "wait", exit)
	assertEqual(t, "nook wait", strings.TrimSpace(r.Stdout), "7")
}

// --restart on-failure:2 counts the restarts across idle periods (each run idles, then fails).
func TestIdleMonitorRestart(t *testing.T) {
	s := useMain(t)
	name := "idr" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "--network", "none", "--restart", "on-failure:2", "demo", "sh", "-c", "echo attempt; sleep 2.5; exit 3")
	waitLog(t, s, name, "attempt", 10*time.Second)
	waitIdle(t, s, name)
	for deadline := time.Now().Add(20 * time.Second); strings.Count(s.mustNook(t, "logs", name).Stdout, "attempt") < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the container was not restarted within 20s")
		}
	}
	waitIdle(t, s, name) // the restarted run idles too
	waitStatus(t, s, name, `^Exited \(3\)`, 30*time.Second)
	assertEqual(t, "runs with on-failure:2 (1 + 2 restarts)", strings.Count(s.mustNook(t, "logs", name).Stdout, "attempt"), 3)
	assertEqual(t, "RestartCount", strings.TrimSpace(s.mustNook(t, "inspect", "--format", "{{.RestartCount}}", name).Stdout), "2")
}

// kill -9 of the idle monitor: the container goes down with it, ps tells the truth, rm cleans up.
func TestIdleMonitorKilled(t *testing.T) {
	s := useMain(t)
	name := "idk" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "--network", "none", "demo", "sh", "-c", termTrap)
	waitLog(t, s, name, "ready", 10*time.Second)
	mon := waitIdle(t, s, name)
	if err := syscall.Kill(mon, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, name, `^Exited \(137\)`, 10*time.Second)
	assertNotContains(t, "nook ps after the idle monitor's death", s.mustNook(t, "ps").Stdout, name)
	s.mustNook(t, "rm", name)
	assertNotContains(t, "nook ps -a after rm", s.mustNook(t, "ps", "-a").Stdout, name)
}

// run -it, detach keys, the monitor idles on the terminal, attach brings it back.
func TestIdleMonitorTerminal(t *testing.T) {
	s := useMain(t)
	name := "idt" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", name) })
	out, err := drivePty(t, s, []string{"run", "-it", "--network", "none", "--name", name, "demo", "sh"}, func(master *os.File, out *ptyOutput) {
		_, _ = master.Write([]byte("echo F''IRST\r"))
		if !out.waitFor("FIRST", 10*time.Second) {
			t.Errorf("no output from nook run -it:\n%s", out.String())
		}
		_, _ = master.Write([]byte{0x10, 0x11})
	})
	if err != nil {
		t.Fatalf("nook run -it after Ctrl-P Ctrl-Q: %v, want exit 0\n%s", err, out.String())
	}
	waitIdle(t, s, name)
	_, err = drivePty(t, s, []string{"attach", name}, func(master *os.File, out *ptyOutput) {
		time.Sleep(200 * time.Millisecond)
		_, _ = master.Write([]byte("echo S''ECOND; exit 6\r"))
		if !out.waitFor("SECOND", 10*time.Second) {
			t.Errorf("no output through nook attach:\n%s", out.String())
		}
	})
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 6 {
		t.Errorf("nook attach until the shell exits 6: %v", err)
	}
	waitStatus(t, s, name, `^Exited \(6\)`, 10*time.Second)
}

// With slirp4netns (the default network) the monitor idles too: slirp4netns stays its child
// and the container keeps its network; stop ends both.
func TestIdleMonitorSlirp4netns(t *testing.T) {
	s := useMain(t)
	name := "idn" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "demo", "sh", "-c", termTrap)
	waitLog(t, s, name, "ready", 10*time.Second)
	mon := waitIdle(t, s, name)
	slirp := 0
	for p, cmd := range userProcs() {
		if strings.Contains(cmd, "slirp4netns") && isAncestor(mon, p) {
			slirp = p
		}
	}
	if slirp == 0 {
		t.Fatalf("no slirp4netns child of the idle monitor (pid %d)", mon)
	}
	r := s.mustNook(t, "exec", name, "ip", "addr", "show", "tap0")
	assertContains(t, "tap0 in the idle container", r.Stdout, "10.0.2.100")
	s.mustNook(t, "stop", name)
	waitStatus(t, s, name, `^Exited \(3\)`, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := syscall.Kill(slirp, 0); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slirp4netns (pid %d) outlived its container by 10s", slirp)
		}
	}
}

// -i without a terminal: the container's stdin pipe lives across idle periods, and input an
// attached client sends after one reaches the payload.
func TestIdleMonitorStdinPipe(t *testing.T) {
	s := useMain(t)
	name := "idi" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "-i", "--name", name, "--network", "none", "demo", "sh", "-c", `echo ready; while read l; do echo "got:$l"; done; echo eof`)
	waitLog(t, s, name, "ready", 10*time.Second)
	waitIdle(t, s, name)
	r := s.nookEnv(t, nil, "first\n", "attach", name)
	if r.Code != 0 {
		t.Fatalf("nook attach with input: exit %d: %s", r.Code, r.Stderr)
	}
	waitLog(t, s, name, "got:first", 10*time.Second)
	// The attach's end of input closes the container's stdin, as Docker's attach does: the
	// payload's read loop ends.
	waitLog(t, s, name, "eof", 10*time.Second)
	waitStatus(t, s, name, `^Exited \(0\)`, 10*time.Second)
	s.mustNook(t, "rm", name)
}

// echoOnce sends msg on a new connection to addr, half-closes it and returns what comes back
// until the end, and how long that took.
func echoOnce(t *testing.T, addr, msg string) (string, time.Duration) {
	t.Helper()
	t0 := time.Now()
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Errorf("read from %s: %v", addr, err)
	}
	return string(b), time.Since(t0)
}

// Published ports (nook's forwarder, in the monitor) do not keep the monitor in Go: a
// connection or a datagram to an idle monitor's port waits in the host socket, wakes it, and
// the resumed forwarder serves it; then the monitor idles again. An open connection keeps it
// in Go.
func TestIdleMonitorPublishedPorts(t *testing.T) {
	s := useMain(t)
	requireSlirp(t)
	nh := netHelper(t)
	name := "idp" + strconv.Itoa(os.Getpid())
	tport, uport := freePort(t), freeUDPPort(t)
	taddr := "127.0.0.1:" + strconv.Itoa(tport)
	runDetached(t, s, "--name", name, "-v", nh+":/nh:ro",
		"-p", taddr+":80", "-p", "127.0.0.1:"+strconv.Itoa(uport)+":5353/udp",
		"demo", "sh", "-c", "/nh/nh tcpecho 80 & /nh/nh udpecho 5353 & echo ready; wait")
	waitLog(t, s, name, "ready", 10*time.Second)
	mon := waitIdle(t, s, name)

	// Two connections, each to an idle monitor: the bytes come back.
	for i, msg := range []string{"first connection\n", "second connection\n"} {
		if i > 0 {
			waitIdle(t, s, name)
		}
		got, took := echoOnce(t, taddr, msg)
		assertEqual(t, "echo through the port of an idle monitor", got, msg)
		assertEqual(t, "monitor pid across the idle cycle", monitorOf(t, s, name), mon)
		t.Logf("connection %d to the idle monitor's port: %v", i+1, took)
	}
	_, warm := echoOnce(t, taddr, "warm\n")
	t.Logf("a connection to the awake monitor's port: %v", warm)

	// A datagram sent while the monitor idles, once: its reply comes back.
	waitIdle(t, s, name)
	u, err := net.Dial("udp4", "127.0.0.1:"+strconv.Itoa(uport))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_ = u.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := u.Write([]byte("ping-idle")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := u.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "echo ") || !strings.HasSuffix(string(buf[:n]), " ping-idle") {
		t.Errorf("the reply to a datagram sent to the idle monitor's port: %q, %v", buf[:n], err)
	}
	waitIdle(t, s, name)

	// A connection that stays open keeps the monitor in Go, and keeps working.
	c, err := net.DialTimeout("tcp4", taddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	for i, line := range []string{"before\n", "after\n"} {
		if i > 0 {
			time.Sleep(3 * time.Second) // three times the idle delay
			if exe := monitorExe(mon); exe == "nook-idle" {
				t.Errorf("the monitor went idle with a forwarded connection open")
			}
		}
		if _, err := io.WriteString(c, line); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read from the open connection: %v", err)
		}
		assertEqual(t, "echo on the open connection", got, line)
	}
	c.Close()
	waitIdle(t, s, name)
	got, _ := echoOnce(t, taddr, "last\n")
	assertEqual(t, "echo after the long connection", got, "last\n")

	s.mustNook(t, "rm", "-f", name)
	assertPortFreed(t, "tcp4", tport, "nook rm -f")
	assertPortFreed(t, "udp4", uport, "nook rm -f")
}
