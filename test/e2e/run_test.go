package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestEnv(t *testing.T) {
	s := useMain(t)
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# a comment\nFROMFILE=file value\n\nOTHER=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.nookEnv(t, []string{"PASSED=from-host"}, "", "run", "--rm", "-e", "FOO=bar", "-e", "SPACED=a b", "-e", "EMPTY=",
		"-e", "PASSED", "--env-file", envFile, "demo", "env")
	assertExit(t, r, 0)
	env := map[string]string{}
	for _, l := range r.Lines() {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	for k, want := range map[string]string{"FOO": "bar", "SPACED": "a b", "EMPTY": "", "PASSED": "from-host", "FROMFILE": "file value", "OTHER": "2"} {
		got, ok := env[k]
		if !ok {
			t.Errorf("%s is not set in the container; env:\n%s", k, r.Stdout)
		} else {
			assertEqual(t, "$"+k, got, want)
		}
	}
	if env["PATH"] == "" {
		t.Errorf("PATH is not set in the container")
	}
	assertEqual(t, "$HOME of root", env["HOME"], "/root")
	// Nothing of nook's own control environment or the host's reaches the payload.
	for k := range env {
		if strings.HasPrefix(k, "NOOK") || strings.HasPrefix(k, "_NOOK") || strings.HasPrefix(k, "_CONTAINERS") || k == "XDG_RUNTIME_DIR" || k == "XDG_DATA_HOME" {
			t.Errorf("host or control variable %s leaked into the container", k)
		}
	}
}

func TestUser(t *testing.T) {
	s := useMain(t)
	for _, c := range []struct{ flag, want string }{
		{"1000:1000", "1000 1000 /home/user"},
		{"1000", "1000 1000 /home/user"},
		{"user", "1000 1000 /home/user"},
		{"1234:5678", "1234 5678 /"},
		{"0:1000", "0 1000 /root"},
	} {
		out := s.sh(t, `echo $(id -u) $(id -g) $HOME`, "-u", c.flag)
		assertEqual(t, "-u "+c.flag+": uid gid HOME", strings.TrimSpace(out), c.want)
	}
	r := s.nook(t, "run", "--rm", "-u", "nosuchuser", "demo", "true")
	if r.Code != 125 && r.Code != 126 {
		t.Errorf("-u nosuchuser: exit %d, want an error (125 or 126)", r.Code)
	}
}

func TestWorkdir(t *testing.T) {
	s := useMain(t)
	assertEqual(t, "-w /tmp", strings.TrimSpace(s.sh(t, "pwd", "-w", "/tmp")), "/tmp")
	assertEqual(t, "--workdir /tmp", strings.TrimSpace(s.sh(t, "pwd", "--workdir", "/tmp")), "/tmp")
	// Like Docker, a missing working directory is created.
	assertEqual(t, "-w /new/dir", strings.TrimSpace(s.sh(t, "pwd", "-w", "/new/dir")), "/new/dir")
	assertEqual(t, "default working directory", strings.TrimSpace(s.sh(t, "pwd")), "/")
}

func TestEntrypointFlag(t *testing.T) {
	s := useMain(t)
	assertEqual(t, "--entrypoint /bin/echo", s.mustNook(t, "run", "--rm", "--entrypoint", "/bin/echo", "demo", "hi", "there").Stdout, "hi there\n")
	assertEqual(t, "--entrypoint echo (looked up in PATH)", s.mustNook(t, "run", "--rm", "--entrypoint", "echo", "demo", "x").Stdout, "x\n")
}

// An imported image has no Cmd (as with docker import): a run without a command is an error.
func TestNoCommand(t *testing.T) {
	s := useMain(t)
	r := s.nook(t, "run", "--rm", "demo")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "command")
}

func psNames(t *testing.T, s *store) string {
	t.Helper()
	return s.mustNook(t, "ps", "-a").Stdout
}

func TestNameAndKeep(t *testing.T) {
	s := useMain(t)
	name := "keep" + strconv.Itoa(os.Getpid())
	r := s.nook(t, "run", "--name", name, "demo", "sh", "-c", "exit 3")
	assertExit(t, r, 3)
	t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
	ps := psNames(t, s)
	var row string
	for _, l := range strings.Split(ps, "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), name) {
			row = l
		}
	}
	if row == "" {
		t.Fatalf("a container run without --rm is not kept: nook ps -a:\n%s", ps)
	}
	assertContains(t, "STATUS of the kept container", row, "Exited (3)")
	assertContains(t, "IMAGE of the kept container", row, "demo")
	header := strings.Split(ps, "\n")[0]
	for _, col := range []string{"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"} {
		assertContains(t, "nook ps -a header", header, col)
	}
	assertNotContains(t, "nook ps (without -a) lists running containers only", s.mustNook(t, "ps").Stdout, name)

	// The name is taken.
	r = s.nook(t, "run", "--rm", "--name", name, "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, name)

	// nook rm removes it and its layer.
	s.mustNook(t, "rm", name)
	assertNotContains(t, "nook ps -a after nook rm", psNames(t, s), name)
}

func TestRmRemovesContainerAndLayer(t *testing.T) {
	s := useMain(t)
	s.mustNook(t, "run", "--rm", "demo", "true") // storage's bookkeeping files exist from here on
	before := graphEntries(s)
	psBefore := s.mustNook(t, "ps", "-a", "-q").Stdout
	name := "rm" + strconv.Itoa(os.Getpid())
	s.mustNook(t, "run", "--rm", "--name", name, "demo", "sh", "-c", "echo data > /root/file")
	assertNotContains(t, "nook ps -a after run --rm", psNames(t, s), name)
	assertEqual(t, "nook ps -a -q after run --rm", s.mustNook(t, "ps", "-a", "-q").Stdout, psBefore)
	assertNoNewGraphEntries(t, s, before, "nook run --rm")
	// A name freed by --rm can be used again.
	s.mustNook(t, "run", "--rm", "--name", name, "demo", "true")
}

func TestStdin(t *testing.T) {
	s := useMain(t)
	r := s.nookEnv(t, nil, "hi\nthere\n", "run", "-i", "--rm", "demo", "cat")
	assertExit(t, r, 0)
	assertEqual(t, "stdout of cat with -i", r.Stdout, "hi\nthere\n")
	// Without -i the container's stdin is not the caller's.
	r = s.nookEnv(t, nil, "hi\n", "run", "--rm", "demo", "cat")
	assertExit(t, r, 0)
	assertEqual(t, "stdout of cat without -i", r.Stdout, "")
	// Large input, and the output arrives whole.
	big := strings.Repeat("0123456789abcdef", 64*1024) // 1 MiB
	r = s.nookEnv(t, nil, big, "run", "-i", "--rm", "demo", "wc", "-c")
	assertExit(t, r, 0)
	assertEqual(t, "wc -c of 1 MiB through -i", strings.TrimSpace(r.Stdout), strconv.Itoa(len(big)))
}

func TestStdoutStderrSeparate(t *testing.T) {
	s := useMain(t)
	r := s.nook(t, "run", "--rm", "demo", "sh", "-c", "echo out; echo err >&2")
	assertExit(t, r, 0)
	assertEqual(t, "stdout", r.Stdout, "out\n")
	assertEqual(t, "stderr", r.Stderr, "err\n")
}

func TestExitCodes(t *testing.T) {
	s := useMain(t)
	for _, c := range []struct {
		name  string
		args  []string
		code  int
		words []string // for nook's own errors: what the one-line message names
	}{
		{"status 0", []string{"true"}, 0, nil},
		{"status 3", []string{"sh", "-c", "exit 3"}, 3, nil},
		{"status 255", []string{"sh", "-c", "exit 255"}, 255, nil},
		{"false", []string{"false"}, 1, nil},
		{"command not in PATH", []string{"no-such-command"}, 127, []string{"no-such-command"}},
		{"missing absolute path", []string{"/no/such/file"}, 127, []string{"/no/such/file"}},
		{"not executable", []string{"/etc/passwd"}, 126, []string{"/etc/passwd"}},
		{"a directory", []string{"/tmp"}, 126, []string{"/tmp"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.nook(t, append([]string{"run", "--rm", "demo"}, c.args...)...)
			assertExit(t, r, c.code)
			if c.words != nil {
				assertErrorLine(t, r, c.words...)
			}
		})
	}
	// 128+N: the shell reports a child killed by a signal the same way.
	r := s.nook(t, "run", "--rm", "demo", "sh", "-c", `sh -c 'kill -9 $$'; exit $?`)
	assertExit(t, r, 137)
}

// findContainerProc finds the host pid of the container process whose command
// line is exactly args, polling until timeout.
func findContainerProc(t *testing.T, args []string, timeout time.Duration) int {
	t.Helper()
	want := strings.Join(args, "\x00") + "\x00"
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && string(b) == want {
				return pid
			}
		}
	}
	t.Fatalf("no process %q appeared within %v", strings.Join(args, " "), timeout)
	return 0
}

// When the container's PID 1 is killed by signal N, nook exits 128+N. (A SIGKILL
// from inside the container cannot do it: the kernel protects a PID namespace's
// init from signals sent within it, so the test kills it from the host.)
func TestExitCodeKilledBySignal(t *testing.T) {
	s := useMain(t)
	arg := strconv.Itoa(500000 + os.Getpid()%400000)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := s.command(ctx, nil, "run", "--rm", "demo", "sleep", arg)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := findContainerProc(t, []string{"sleep", arg}, 30*time.Second)
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	assertMatch(t, "NSpid of the container process", string(st), `(?m)^NSpid:\s+\d+(\s+\d+)*\s+1$`)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -KILL %d: %v", pid, err)
	}
	_ = cmd.Wait()
	t.Logf("stdout: %s\nstderr: %s", out.String(), errb.String())
	assertEqual(t, "exit code of nook when the container is killed by SIGKILL", cmd.ProcessState.ExitCode(), 137)
}

// kill -TERM on nook reaches the container's PID 1.
func TestSignalForwarded(t *testing.T) {
	s := useMain(t)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := s.command(ctx, nil, "run", "--rm", "demo", "sh", "-c", `trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.1; done`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if l != "ready" {
			t.Fatalf("first line %q, want ready", l)
		}
	case <-time.After(30 * time.Second):
		cmd.Cancel()
		t.Fatalf("the container did not start within 30s; stderr: %s", errb.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	_ = cmd.Wait()
	t.Logf("stderr: %s", errb.String())
	assertEqual(t, "output after SIGTERM", strings.Join(rest, "\n"), "got-term")
	assertEqual(t, "exit code of nook after kill -TERM", cmd.ProcessState.ExitCode(), 42)
}

// Several nooks on the same store at the same time simply work.
func TestConcurrentRuns(t *testing.T) {
	s := useMain(t)
	type job struct {
		args []string
		want string
	}
	var jobs []job
	for i := range 4 {
		jobs = append(jobs, job{[]string{"run", "--rm", "demo", "sh", "-c", fmt.Sprintf("sleep 0.2; echo run-%d", i)}, fmt.Sprintf("run-%d\n", i)})
	}
	jobs = append(jobs, job{[]string{"import", busyboxTar, "concurrent:1"}, ""})
	t.Cleanup(func() { s.nook(t, "rmi", "concurrent:1") })
	results := make([]result, len(jobs))
	done := make(chan int)
	for i, j := range jobs {
		go func() {
			results[i] = s.exec(context.Background(), nil, "", j.args...)
			done <- i
		}()
	}
	for range jobs {
		<-done
	}
	for i, j := range jobs {
		r := results[i]
		t.Logf("%s", r)
		assertExit(t, r, 0)
		if j.want != "" {
			assertEqual(t, "stdout of nook "+strings.Join(j.args, " "), r.Stdout, j.want)
		} else if !imageIDRe.MatchString(strings.TrimSpace(r.Stdout)) {
			t.Errorf("concurrent import printed %q", r.Stdout)
		}
	}
	rows := parseImages(t, s.mustNook(t, "images").Stdout)
	if _, ok := findImage(rows, "concurrent", "1"); !ok {
		t.Errorf("the image imported concurrently is not listed")
	}
}

// The payload starts with standard streams only: the engine's control socket and the fd of
// nook's own executable are closed before it runs (runc's CVE-2024-21626 was a leaked fd).
func TestNoControlFdsReachPayload(t *testing.T) {
	s := useMain(t)
	// PID 1 is the payload shell; `ls` is its child, so its own directory fd is not counted.
	// The shell holds the pipe's two ends for a moment while it forks the pipeline: the
	// listing waits until it has closed them.
	out := s.sh(t, `{ sleep 0.3; ls /proc/1/fd; } | tr '\n' ' '`)
	assertEqual(t, "open fds of the payload", strings.TrimSpace(out), "0 1 2")
	// The working directory is inside the container, never a host path.
	out = s.sh(t, `readlink /proc/self/cwd; readlink /proc/1/cwd`)
	for _, l := range strings.Fields(out) {
		if l != "/" {
			t.Errorf("a working directory outside the container's root leaked in: %q", l)
		}
	}
}
