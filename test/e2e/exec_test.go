package e2e

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// `nook exec` joins every namespace of a running container, with its security settings.

func execContainer(t *testing.T, s *store, extra ...string) string {
	t.Helper()
	name := "ex" + strconv.Itoa(os.Getpid()) + strconv.Itoa(int(time.Now().UnixNano()%1000))
	runDetached(t, s, append(append([]string{"--name", name}, extra...), "demo", "sh", "-c", termTrap)...)
	waitLog(t, s, name, "ready", 10*time.Second)
	return name
}

func TestExecNamespaces(t *testing.T) {
	s := useMain(t)
	name := execContainer(t, s, "-h", "exechost")
	// The same namespaces as the container's PID 1: compare the links from inside.
	out := s.mustNook(t, "exec", name, "sh", "-c",
		`for n in user mnt pid net uts ipc cgroup; do a=$(readlink /proc/self/ns/$n); b=$(readlink /proc/1/ns/$n); [ "$a" = "$b" ] && echo "$n same" || echo "$n differs $a $b"; done`).Stdout
	for _, ns := range []string{"user", "mnt", "pid", "net", "uts", "ipc", "cgroup"} {
		assertContains(t, "exec's "+ns+" namespace", out, ns+" same\n")
	}
	assertEqual(t, "hostname in exec", s.mustNook(t, "exec", name, "hostname").Stdout, "exechost\n")
	assertContains(t, "PID 1 seen from exec", s.mustNook(t, "exec", name, "cat", "/proc/1/cmdline").Stdout, "trap")
	// Security settings: Docker's capabilities, no_new_privs.
	status := s.mustNook(t, "exec", name, "cat", "/proc/self/status").Stdout
	assertContains(t, "exec's CapEff", status, "CapEff:\t00000000a80425fb")
	assertContains(t, "exec's CapBnd", status, "CapBnd:\t00000000a80425fb")
	assertMatch(t, "exec's NoNewPrivs", status, `NoNewPrivs:\s+1`)
	assertEqual(t, "exec's root is the container's", s.mustNook(t, "exec", name, "cat", "/tmp/../etc/hostname").Stdout, "exechost\n")
	// The container's environment, with exec's changes.
	env := s.mustNook(t, "exec", "-e", "EXTRA=1", name, "env").Stdout
	assertContains(t, "exec env", env, "EXTRA=1\n")
	assertContains(t, "exec env", env, "HOSTNAME=exechost\n")
	assertContains(t, "exec env", env, "PATH=")
}

func TestExecOptionsAndStatus(t *testing.T) {
	s := useMain(t)
	name := execContainer(t, s)
	assertEqual(t, "exec -w", s.mustNook(t, "exec", "-w", "/tmp", name, "pwd").Stdout, "/tmp\n")
	assertEqual(t, "exec -u 1000", s.mustNook(t, "exec", "-u", "1000", name, "id", "-u").Stdout, "1000\n")
	assertEqual(t, "exec -u user (by name)", s.mustNook(t, "exec", "-u", "user", name, "sh", "-c", "id -u; id -g; echo $HOME").Stdout, "1000\n1000\n/home/user\n")
	assertEqual(t, "exec -u 1000:65534", s.mustNook(t, "exec", "-u", "1000:65534", name, "id", "-g").Stdout, "65534\n")
	r := s.nook(t, "exec", name, "sh", "-c", "echo out; echo err >&2; exit 3")
	assertExit(t, r, 3)
	assertEqual(t, "exec stdout", r.Stdout, "out\n")
	assertEqual(t, "exec stderr", r.Stderr, "err\n")
	r = s.nook(t, "exec", name, "sh", "-c", "kill -9 $$")
	assertExit(t, r, 137)
	r = s.nook(t, "exec", name, "nosuchcommand")
	assertExit(t, r, 127)
	r = s.nook(t, "exec", name, "/etc")
	assertExit(t, r, 126)
	r = s.nook(t, "exec", "-u", "nosuchuser", name, "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "nosuchuser")
	r = s.nookEnv(t, nil, "via-stdin\n", "exec", "-i", name, "cat")
	assertEqual(t, "exec -i", r.Stdout, "via-stdin\n")
	r = s.nookEnv(t, nil, "via-stdin\n", "exec", name, "cat")
	assertEqual(t, "exec without -i reads nothing", r.Stdout, "")
	// exec -d returns at once; the command runs in the background.
	start := time.Now()
	s.mustNook(t, "exec", "-d", name, "sh", "-c", "sleep 0.5; echo bg > /tmp/bg")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("exec -d took %v", d)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if s.exec(context.Background(), nil, "", "exec", name, "cat", "/tmp/bg").Stdout == "bg\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("exec -d: the background command never ran")
		}
	}
}

// exec -it gets a terminal of its own.
func TestExecTerminal(t *testing.T) {
	s := useMain(t)
	name := execContainer(t, s)
	master, slave := openPty(t)
	defer master.Close()
	setWinsize(t, master, 33, 101)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := exec_(ctx, s, "exec", "-it", name, "sh", "-c", "tty; stty size; test -t 0 && echo is-a-tty; exit 4")
	out, _ := startOnPty(t, cmd, master, slave)
	err := cmd.Wait()
	out.waitFor("is-a-tty", 2*time.Second)
	t.Logf("terminal output:\n%s", out.String())
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 4 {
		t.Errorf("nook exec -it: %v, want exit 4", err)
	}
	assertMatch(t, "tty in exec -it", out.String(), `/dev/pts/\d+`)
	assertContains(t, "stty size in exec -it", out.String(), "33 101")
	assertContains(t, "exec -it", out.String(), "is-a-tty")
}

func TestExecStoppedContainer(t *testing.T) {
	s := useMain(t)
	name := "exs" + strconv.Itoa(os.Getpid())
	s.mustNook(t, "create", "--name", name, "demo", "true")
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", name) })
	r := s.nook(t, "exec", name, "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "not running", name)
	assertEqual(t, "stderr lines", strings.Count(r.Stderr, "\n"), 1)
}

// A signal sent to `nook exec` reaches the command (Docker's sig-proxy): the command's trap
// decides the status, not the death of a helper between nook and the command.
func TestExecSignalForwarded(t *testing.T) {
	s := useMain(t)
	name := execContainer(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := s.command(ctx, nil, "exec", name, "sh", "-c", `trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("nook exec: read %q (%v), want ready", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 42 {
		t.Fatalf("nook exec after SIGTERM: %v, want exit 42 (the command's trap)", err)
	}
}
