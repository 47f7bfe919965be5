package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The detached containers of the lifecycle tests: `nook run -d`, its monitor, and every
// command that works on a container afterwards.

var fullID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// runDetached runs `nook run -d ARGS` (which must succeed and print the full ID) and removes the
// container at the end of the test.
func runDetached(t *testing.T, s *store, args ...string) string {
	t.Helper()
	r := s.mustNook(t, append([]string{"run", "-d"}, args...)...)
	id := strings.TrimSpace(r.Stdout)
	if !fullID.MatchString(id) {
		t.Fatalf("nook run -d printed %q, want the container's full 64-hex ID", r.Stdout)
	}
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", id) })
	return id
}

// inspectState reads `nook inspect`'s State of a container.
func inspectState(t *testing.T, s *store, ref string) (status string, running bool, pid, code int) {
	t.Helper()
	r := s.mustNook(t, "inspect", "--format", "{{.State.Status}} {{.State.Running}} {{.State.Pid}} {{.State.ExitCode}}", ref)
	f := strings.Fields(r.Stdout)
	if len(f) != 4 {
		t.Fatalf("nook inspect --format: %q", r.Stdout)
	}
	pid, _ = strconv.Atoi(f[2])
	code, _ = strconv.Atoi(f[3])
	return f[0], f[1] == "true", pid, code
}

// psStatus is the STATUS column of a container in `nook ps -a`.
func psStatus(t *testing.T, s *store, name string) string {
	t.Helper()
	r := s.mustNook(t, "ps", "-a", "--format", "{{.Names}}|{{.Status}}")
	for _, line := range r.Lines() {
		if n, st, ok := strings.Cut(line, "|"); ok && n == name {
			return st
		}
	}
	return ""
}

// waitStatus polls `nook ps -a` until the container's STATUS matches re.
func waitStatus(t *testing.T, s *store, name, re string, timeout time.Duration) string {
	t.Helper()
	var st string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		st = s.exec(context.Background(), nil, "", "ps", "-a", "--format", "{{.Names}}|{{.Status}}").Stdout
		for _, line := range strings.Split(st, "\n") {
			if n, v, ok := strings.Cut(line, "|"); ok && n == name && regexp.MustCompile(re).MatchString(v) {
				return v
			}
		}
	}
	t.Fatalf("container %s: STATUS never matched /%s/; nook ps -a:\n%s", name, re, st)
	return ""
}

// waitLog polls `nook logs` until it contains want.
func waitLog(t *testing.T, s *store, name, want string, timeout time.Duration) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out = s.exec(context.Background(), nil, "", "logs", name).Stdout
		if strings.Contains(out, want) {
			return out
		}
	}
	t.Fatalf("nook logs %s never showed %q; got:\n%s", name, want, out)
	return ""
}

// A TERM handler that ends the container with status 3: a container that stops promptly.
const termTrap = `trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done`

// run -d, ps, inspect, stop, ps -a, wait: the basic life of a detached container.
func TestLifecycleRunDetached(t *testing.T) {
	s := useMain(t)
	name := "ld" + strconv.Itoa(os.Getpid())
	id := runDetached(t, s, "--name", name, "demo", "sh", "-c", termTrap)

	assertMatch(t, "STATUS of a running container", psStatus(t, s, name), `^Up (Less than a second|\d+ seconds?)$`)
	assertContains(t, "nook ps (running only)", s.mustNook(t, "ps").Stdout, name)
	assertContains(t, "nook ps -q", s.mustNook(t, "ps", "-q").Stdout, id[:12]+"\n")
	assertContains(t, "nook ps --no-trunc", s.mustNook(t, "ps", "--no-trunc").Stdout, id)
	assertContains(t, "nook container ls", s.mustNook(t, "container", "ls").Stdout, name)
	st, running, pid, _ := inspectState(t, s, name)
	if st != "running" || !running || pid <= 0 {
		t.Errorf("nook inspect of a running container: status %s running %v pid %d", st, running, pid)
	}
	waitLog(t, s, name, "ready", 10*time.Second)

	start := time.Now()
	assertEqual(t, "nook stop output", s.mustNook(t, "stop", name).Stdout, name+"\n")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("nook stop of a container that handles TERM took %v", d)
	}
	assertMatch(t, "STATUS after stop", psStatus(t, s, name), `^Exited \(3\) (Less than a second|\d+ seconds?) ago$`)
	assertNotContains(t, "nook ps (running only) after stop", s.mustNook(t, "ps").Stdout, name)
	assertEqual(t, "nook wait of an exited container", s.mustNook(t, "wait", name).Stdout, "3\n")
	assertContains(t, "nook logs after stop", s.mustNook(t, "logs", name).Stdout, "got-term")
	st, running, _, code := inspectState(t, s, id[:12])
	if st != "exited" || running || code != 3 {
		t.Errorf("nook inspect after stop: status %s running %v exit code %d", st, running, code)
	}
	assertEqual(t, "stop of a stopped container", s.mustNook(t, "stop", name).Stdout, name+"\n")
	s.mustNook(t, "rm", name)
	assertNotContains(t, "nook ps -a after rm", s.mustNook(t, "ps", "-a").Stdout, name)
}

// create, start, stop, start again: the same container, whose layer keeps what it wrote until rm.
func TestLifecycleCreateStartKeepsLayer(t *testing.T) {
	s := useMain(t)
	before := graphEntries(s)
	name := "lk" + strconv.Itoa(os.Getpid())
	r := s.mustNook(t, "create", "--name", name, "demo", "sh", "-c", `echo run >> /root/runs; echo "runs=$(wc -l < /root/runs)"; `+termTrap)
	id := strings.TrimSpace(r.Stdout)
	if !fullID.MatchString(id) {
		t.Fatalf("nook create printed %q, want the full ID", r.Stdout)
	}
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", id) })
	assertEqual(t, "STATUS of a created container", psStatus(t, s, name), "Created")
	assertEqual(t, "nook start", s.mustNook(t, "start", name).Stdout, name+"\n")
	waitLog(t, s, name, "runs=1", 10*time.Second)
	s.mustNook(t, "stop", name)
	s.mustNook(t, "start", id[:12])
	waitLog(t, s, name, "runs=2", 10*time.Second)
	s.mustNook(t, "restart", "-t", "5", name)
	waitLog(t, s, name, "runs=3", 10*time.Second)
	assertMatch(t, "STATUS after restart", psStatus(t, s, name), `^Up `)
	s.mustNook(t, "rm", "-f", name)
	assertNoNewGraphEntries(t, s, before, "create/start/stop/rm")
}

// A process that ignores SIGTERM is killed after stop's -t seconds.
func TestLifecycleStopTimeout(t *testing.T) {
	s := useMain(t)
	name := "lt" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "demo", "sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.1; done`)
	waitLog(t, s, name, "ready", 10*time.Second)
	start := time.Now()
	s.mustNook(t, "stop", "-t", "2", name)
	d := time.Since(start)
	if d < 2*time.Second || d > 8*time.Second {
		t.Errorf("nook stop -t 2 of a container ignoring TERM took %v, want about 2s", d)
	}
	assertMatch(t, "STATUS after SIGKILL", psStatus(t, s, name), `^Exited \(137\) `)
}

// stop runs the cleanup itself once the monitor hands it over (the "engine cleaned up" mark
// proves that path), and the container is left as a cleanup leaves it: exited with its status,
// startable again, removable.
func TestLifecycleStopRunsCleanup(t *testing.T) {
	s := useMain(t)
	name := "lsc" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "demo", "sh", "-c", termTrap)
	waitLog(t, s, name, "ready", 10*time.Second)
	r := s.nookEnv(t, []string{"NOOK_TIMING=1"}, "", "stop", name)
	if r.Code != 0 {
		t.Fatalf("nook stop: exit %d: %s", r.Code, r.Stderr)
	}
	assertContains(t, "nook stop's timing marks", r.Stderr, "engine cleaned up")
	assertMatch(t, "STATUS after stop", psStatus(t, s, name), `^Exited \(3\) `)
	s.mustNook(t, "start", name)
	waitStatus(t, s, name, `^Up `, 10*time.Second)
	s.mustNook(t, "rm", "-f", name)
	assertNotContains(t, "nook ps -a after rm -f", s.mustNook(t, "ps", "-a").Stdout, name)
}

// A stop killed after it claimed the cleanup leaves the cleanup to the monitor. The container
// is a --rm one, so the cleanup shows: it is removed once it ends.
func TestLifecycleStopperKilled(t *testing.T) {
	s := useMain(t)
	before := graphEntries(s)
	name := "lsk" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--rm", "--name", name, "demo", "sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.1; done`)
	waitLog(t, s, name, "ready", 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := s.command(ctx, nil, "stop", "-t", "60", name)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the stop has sent its claim and TERM, which the payload ignores
	// The engine runs in a session of its own and outlives its CLI: kill both.
	killed := 0
	for pid, c := range userProcs() {
		if strings.Contains(c, " stop -t 60 "+name) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no process of `nook stop -t 60 %s` found to kill", name)
	}
	_ = cmd.Wait()
	assertMatch(t, "STATUS after the stop was killed", psStatus(t, s, name), `^Up `)
	s.mustNook(t, "kill", name)
	for deadline := time.Now().Add(20 * time.Second); strings.Contains(s.mustNook(t, "ps", "-a").Stdout, name); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the --rm container was not removed after it ended: its monitor did not clean up")
		}
	}
	assertNoNewGraphEntries(t, s, before, "run -d --rm, a killed stop, kill")
}

// When the main process ends, every other process of the container ends with it.
func TestLifecycleMainProcessEndsAll(t *testing.T) {
	s := useMain(t)
	name := "la" + strconv.Itoa(os.Getpid())
	marker := "4242" + strconv.Itoa(os.Getpid()%1000)
	runDetached(t, s, "--name", name, "demo", "sh", "-c", "sleep "+marker+" & sleep "+marker+" & echo ready; sleep 1; exit 7")
	waitLog(t, s, name, "ready", 10*time.Second)
	assertEqual(t, "nook wait", s.mustNook(t, "wait", name).Stdout, "7\n")
	for pid, cmd := range userProcs() {
		if strings.Contains(cmd, "sleep "+marker) {
			t.Errorf("process %d (%s) outlived the container's main process", pid, cmd)
		}
	}
	assertMatch(t, "STATUS", psStatus(t, s, name), `^Exited \(7\) `)
}

// kill sends a signal (default KILL) through the monitor.
func TestLifecycleKill(t *testing.T) {
	s := useMain(t)
	name := "lz" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "demo", "sh", "-c", `trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done`)
	waitLog(t, s, name, "ready", 10*time.Second)
	assertEqual(t, "nook kill -s USR1", s.mustNook(t, "kill", "-s", "USR1", name).Stdout, name+"\n")
	waitLog(t, s, name, "got-usr1", 10*time.Second)
	s.mustNook(t, "kill", "-s", "SIGUSR1", name)
	// SIGKILL, the default, returns once the container has ended, as Docker's does: ps and
	// start right after it see a stopped container.
	s.mustNook(t, "kill", name)
	assertMatch(t, "STATUS right after nook kill", psStatus(t, s, name), `^Exited \(137\)`)
	r := s.nook(t, "kill", "-s", "NOSUCHSIG", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "signal")
	r = s.nook(t, "kill", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "not running")
}

// --restart is honoured by the monitor; stop ends it for good.
func TestLifecycleRestartPolicy(t *testing.T) {
	s := useMain(t)
	name := "lr" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "--restart", "on-failure:2", "demo", "sh", "-c", "echo attempt; exit 1")
	waitStatus(t, s, name, `^Exited \(1\)`, 20*time.Second)
	out := waitLog(t, s, name, "attempt", time.Second)
	assertEqual(t, "runs with on-failure:2 (1 + 2 restarts)", strings.Count(out, "attempt"), 3)
	assertEqual(t, "RestartCount", strings.TrimSpace(s.mustNook(t, "inspect", "--format", "{{.RestartCount}}", name).Stdout), "2")

	// unless-stopped is always while the monitor lives (docs/decisions.md): both restart, both
	// stay stopped after `nook stop`, and inspect names the policy that was given.
	for i, policy := range []string{"always", "unless-stopped"} {
		always := "lra" + strconv.Itoa(i) + strconv.Itoa(os.Getpid())
		runDetached(t, s, "--name", always, "--restart", policy, "demo", "sh", "-c", "echo again; sleep 0.2")
		assertEqual(t, "RestartPolicy.Name", strings.TrimSpace(s.mustNook(t, "inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", always).Stdout), policy)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if strings.Count(s.exec(context.Background(), nil, "", "logs", always).Stdout, "again") >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("--restart %s: the container was not restarted twice within 20s", policy)
			}
		}
		s.mustNook(t, "stop", always)
		n := strings.Count(s.mustNook(t, "logs", always).Stdout, "again")
		time.Sleep(time.Second)
		assertEqual(t, "runs after stop of a --restart "+policy+" container", strings.Count(s.mustNook(t, "logs", always).Stdout, "again"), n)
		assertMatch(t, "STATUS after stop", psStatus(t, s, always), `^Exited `)
	}

	r := s.nook(t, "run", "-d", "--rm", "--restart", "always", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "--restart", "--rm")
	r = s.nook(t, "run", "-d", "--restart", "sometimes", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "restart policy")
}

// --rm with -d: the monitor removes the container when it ends.
func TestLifecycleDetachedRm(t *testing.T) {
	s := useMain(t)
	before := graphEntries(s)
	name := "lm" + strconv.Itoa(os.Getpid())
	s.mustNook(t, "run", "-d", "--rm", "--name", name, "demo", "sh", "-c", "sleep 0.5")
	for deadline := time.Now().Add(20 * time.Second); strings.Contains(s.mustNook(t, "ps", "-a").Stdout, name); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a --rm detached container was not removed after it ended")
		}
	}
	assertNoNewGraphEntries(t, s, before, "run -d --rm")
}

// Names are unique, IDs may be abbreviated, an ambiguous prefix is an error, and every command
// says so clearly about a container that does not exist.
func TestLifecycleNamesAndIDs(t *testing.T) {
	s := useMain(t)
	name := "ln" + strconv.Itoa(os.Getpid())
	id := runDetached(t, s, "--name", name, "demo", "sh", "-c", termTrap)
	r := s.nook(t, "run", "-d", "--name", name, "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "already in use", name)
	r = s.nook(t, "create", "--name", name, "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "already in use")
	assertMatch(t, "inspect by ID prefix", s.mustNook(t, "inspect", "--format", "{{.Name}}", id[:8]).Stdout, "^"+name+"\n$")

	// Created containers until two share a first hex digit (at most 17).
	seen := map[byte]string{}
	var prefix string
	for i := 0; i < 17 && prefix == ""; i++ {
		cid := strings.TrimSpace(s.mustNook(t, "create", "demo", "true").Stdout)
		t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", cid) })
		if _, ok := seen[cid[0]]; ok {
			prefix = cid[:1]
		}
		seen[cid[0]] = cid
	}
	r = s.nook(t, "inspect", prefix)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "ambiguous")
	r = s.nook(t, "rm", prefix)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "ambiguous")

	for _, args := range [][]string{
		{"start", "nosuch"}, {"stop", "nosuch"}, {"restart", "nosuch"}, {"kill", "nosuch"},
		{"rm", "nosuch"}, {"logs", "nosuch"}, {"exec", "nosuch", "true"}, {"wait", "nosuch"},
		{"port", "nosuch"}, {"top", "nosuch"}, {"attach", "nosuch"}, {"inspect", "--type", "container", "nosuch"},
		{"cp", "nosuch:/etc/hostname", t.TempDir()},
	} {
		r := s.nook(t, args...)
		assertExit(t, r, 125)
		assertErrorLine(t, r, "no such container", "nosuch")
	}
}

// Bad requests fail clearly with 125 and change nothing.
func TestLifecycleFaults(t *testing.T) {
	s := useMain(t)
	name := "lf" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "demo", "sh", "-c", termTrap)
	waitLog(t, s, name, "ready", 10*time.Second)
	r := s.nook(t, "start", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "already running")
	r = s.nook(t, "rm", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "running", "force")
	assertMatch(t, "still running after the refused rm", psStatus(t, s, name), "^Up ")
	s.mustNook(t, "stop", name)
	r = s.nook(t, "exec", name, "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "not running")
	bad := name + "-bad"
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", bad) })
	r = s.nook(t, "run", "-d", "--name", bad, "demo", "/no/such/command")
	assertExit(t, r, 127)
	assertErrorLine(t, r, "/no/such/command")
	// The failed start is recorded as the container's end, as Docker shows it.
	assertMatch(t, "STATUS after a failed run -d", psStatus(t, s, bad), `^Exited \(127\) `)
	s.mustNook(t, "rm", "-f", name)
}

// start -a attaches to the output and ends with the container's status.
func TestLifecycleStartAttach(t *testing.T) {
	s := useMain(t)
	name := "lsa" + strconv.Itoa(os.Getpid())
	s.mustNook(t, "create", "--name", name, "demo", "sh", "-c", "echo out; echo err >&2; exit 5")
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", name) })
	r := s.nook(t, "start", "-a", name)
	assertExit(t, r, 5)
	assertEqual(t, "start -a stdout", r.Stdout, "out\n")
	assertEqual(t, "start -a stderr", r.Stderr, "err\n")
	r = s.nookEnv(t, nil, "from-stdin\n", "start", "-a", "-i", name)
	assertExit(t, r, 5)
	s.mustNook(t, "rm", name)
	s.mustNook(t, "create", "-i", "--name", name, "demo", "cat")
	r = s.nookEnv(t, nil, "from-stdin\n", "start", "-a", "-i", name)
	assertExit(t, r, 0)
	assertEqual(t, "start -ai with input", r.Stdout, "from-stdin\n")
}

// A detached container's monitor outlives the `nook run -d` that started it: it must not hold
// what that command's caller left open (a file, a pipe someone waits to see closed).
func TestLifecycleMonitorHoldsNoCallerFds(t *testing.T) {
	s := useMain(t)
	held, err := os.Create(filepath.Join(t.TempDir(), "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	name := "lfd" + strconv.Itoa(os.Getpid())
	cmd := s.command(context.Background(), nil, "run", "-d", "--name", name, "--network", "none", "demo", "sh", "-c", termTrap)
	// fds 3 to 10 of nook, not close-on-exec; nook's own helpers get fds 3 to 6 replaced.
	cmd.ExtraFiles = []*os.File{held, held, held, held, held, held, pw, held}
	out, err := cmd.CombinedOutput()
	pw.Close()
	if err != nil {
		t.Fatalf("nook run -d: %v\n%s", err, out)
	}
	t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
	waitLog(t, s, name, "ready", 10*time.Second)
	_, _, pid, _ := inspectState(t, s, name)
	mon := nookMonitor(t, pid)
	heldPath, _ := filepath.EvalSymlinks(held.Name())
	pipeID, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", pr.Fd()))
	for _, p := range []int{mon, pid} {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		for _, fd := range fds {
			l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p, fd.Name()))
			if l == heldPath || l == pipeID {
				t.Errorf("process %d (monitor %d) holds the caller's %s as fd %s", p, mon, l, fd.Name())
			}
		}
	}
	// The pipe's write end is gone with nook: a reader sees its end at once.
	_ = pr.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := pr.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read of the pipe given to nook run -d: %v, want EOF (someone still holds it)", err)
	}
}

// The monitor killed with SIGKILL takes its container down; ps tells the truth and rm cleans up.
func TestLifecycleMonitorKilled(t *testing.T) {
	s := useMain(t)
	name := "lmk" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "demo", "sh", "-c", termTrap)
	waitLog(t, s, name, "ready", 10*time.Second)
	_, _, pid, _ := inspectState(t, s, name)
	mon := nookMonitor(t, pid)
	if err := syscall.Kill(mon, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, name, `^Exited \(137\)`, 10*time.Second)
	assertNotContains(t, "nook ps after the monitor's death", s.mustNook(t, "ps").Stdout, name)
	s.mustNook(t, "rm", name)
	assertNotContains(t, "nook ps -a after rm", s.mustNook(t, "ps", "-a").Stdout, name)
}

// nookMonitor is the nook-monitor process above the container's init pid; the test fails
// without one.
func nookMonitor(t *testing.T, pid int) int {
	t.Helper()
	for p, cmd := range userProcs() {
		if strings.HasPrefix(cmd, "nook-monitor ") && isAncestor(p, pid) {
			return p
		}
	}
	t.Fatalf("no nook-monitor process is the ancestor of the container's init (pid %d)", pid)
	return 0
}

func isAncestor(anc, pid int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		pid, _ = strconv.Atoi(f[1])
		if pid == anc {
			return true
		}
	}
	return false
}

// nook killed with SIGKILL in the middle of `run -d`: whatever moment it died, the container
// is either absent or listed and removable, and nothing leaks (the leak check).
func TestLifecycleNookKilledMidRun(t *testing.T) {
	s := useMain(t)
	for i, delay := range []time.Duration{5 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond, 120 * time.Millisecond} {
		name := fmt.Sprintf("lkill%d-%d", os.Getpid(), i)
		ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
		cmd := s.command(ctx, nil, "run", "-d", "--name", name, "demo", "sh", "-c", termTrap)
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		cancel()
		time.Sleep(200 * time.Millisecond)
		st := psStatus(t, s, name)
		t.Logf("killed after %v: STATUS %q", delay, st)
		if st != "" {
			s.mustNook(t, "rm", "-f", name)
		}
		assertNotContains(t, "nook ps -a after rm -f", s.mustNook(t, "ps", "-a").Stdout, name)
	}
}

// Twenty detached containers started at once, listed, stopped and removed: nothing is left
// behind (the leak check looks at mounts, processes, run-root files; the graph root here).
func TestLifecycleTwentyAtOnce(t *testing.T) {
	s := useMain(t)
	before := graphEntries(s)
	const n = 20
	names := make([]string, n)
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		names[i] = fmt.Sprintf("l20-%d-%d", os.Getpid(), i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.exec(context.Background(), nil, "", "run", "-d", "--name", names[i], "demo", "sh", "-c", termTrap)
		}()
	}
	wg.Wait()
	t.Cleanup(func() { s.exec(context.Background(), nil, "", append([]string{"rm", "-f"}, names...)...) })
	for i, r := range results {
		if r.Code != 0 || !fullID.MatchString(strings.TrimSpace(r.Stdout)) {
			t.Errorf("run -d %s: %s", names[i], r)
		}
	}
	ps := s.mustNook(t, "ps", "--format", "{{.Names}} {{.State}}").Stdout
	for _, name := range names {
		assertContains(t, "nook ps", ps, name+" running")
	}
	s.mustNook(t, append([]string{"stop"}, names...)...)
	ps = s.mustNook(t, "ps", "-a", "--format", "{{.Names}} {{.State}}").Stdout
	for _, name := range names {
		assertContains(t, "nook ps -a after stop", ps, name+" exited")
	}
	s.mustNook(t, append([]string{"rm"}, names...)...)
	ps = s.mustNook(t, "ps", "-a").Stdout
	for _, name := range names {
		assertNotContains(t, "nook ps -a after rm", ps, name)
	}
	assertNoNewGraphEntries(t, s, before, "20 containers run, stopped and removed")
}

// container prune removes what does not run, and only that.
func TestLifecyclePrune(t *testing.T) {
	s := newStore(t, "prune", storeOptions{}, false)
	a := strings.TrimSpace(s.mustNook(t, "create", "--name", "pa", "demo", "true").Stdout)
	s.mustNook(t, "run", "--name", "pb", "demo", "true")
	runDetached(t, s, "--name", "pc", "demo", "sh", "-c", termTrap)
	r := s.mustNook(t, "container", "prune", "-f")
	assertContains(t, "nook container prune -f", r.Stdout, a)
	ps := s.mustNook(t, "ps", "-a", "--format", "{{.Names}}").Stdout
	assertEqual(t, "containers after prune", ps, "pc\n")
	s.mustNook(t, "rm", "-f", "pc")
}

// cp into and out of a running container (through its mount namespace) and a stopped one
// (through its layer).
func TestLifecycleCp(t *testing.T) {
	s := useMain(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "hello.txt")
	if err := os.WriteFile(src, []byte("hello from the host\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(sub, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "a", "b", "f"), []byte("deep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := "lc" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "demo", "sh", "-c", `echo made-inside > /tmp/inside.txt; `+termTrap)
	waitLog(t, s, name, "ready", 10*time.Second)

	s.mustNook(t, "cp", src, name+":/root/")
	s.mustNook(t, "cp", sub, name+":/opt")
	assertEqual(t, "file copied in", s.mustNook(t, "exec", name, "cat", "/root/hello.txt").Stdout, "hello from the host\n")
	assertEqual(t, "mode kept", s.mustNook(t, "exec", name, "stat", "-c", "%a", "/root/hello.txt").Stdout, "640\n")
	assertEqual(t, "tree copied in", s.mustNook(t, "exec", name, "cat", "/opt/a/b/f").Stdout, "deep\n")
	out := filepath.Join(dir, "out.txt")
	s.mustNook(t, "cp", name+":/tmp/inside.txt", out)
	b, err := os.ReadFile(out)
	assertEqual(t, "file copied out", string(b), "made-inside\n")
	if err != nil {
		t.Error(err)
	}
	r := s.nook(t, "cp", name+":/no/such/file", dir)
	assertExit(t, r, 125)

	s.mustNook(t, "stop", name)
	s.mustNook(t, "cp", src, name+":/root/again.txt")
	s.mustNook(t, "cp", name+":/root/again.txt", filepath.Join(dir, "again"))
	b, _ = os.ReadFile(filepath.Join(dir, "again"))
	assertEqual(t, "copied in and out of a stopped container", string(b), "hello from the host\n")
	s.mustNook(t, "cp", name+":/opt/a", filepath.Join(dir, "a-out"))
	b, _ = os.ReadFile(filepath.Join(dir, "a-out", "b", "f"))
	assertEqual(t, "tree copied out of a stopped container", string(b), "deep\n")
}

// inspect's document, and port and PORTS with a published port.
func TestLifecycleInspectAndPort(t *testing.T) {
	s := useMain(t)
	name := "li" + strconv.Itoa(os.Getpid())
	args := []string{"--name", name, "-e", "K=V"}
	published := slirpUnusable() == ""
	var port int
	if published {
		port = freePort(t)
		args = append(args, "-p", fmt.Sprintf("127.0.0.1:%d:80", port))
	}
	id := runDetached(t, s, append(args, "demo", "sh", "-c", `echo hello-port | nc -l -p 80; `+termTrap)...)
	var docs []map[string]any
	if err := json.Unmarshal([]byte(s.mustNook(t, "inspect", name).Stdout), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("nook inspect: not one JSON document: %v", err)
	}
	d := docs[0]
	assertEqual(t, "Id", d["Id"], any(id))
	assertEqual(t, "Name", d["Name"], any(name))
	assertEqual(t, "State.Status", d["State"].(map[string]any)["Status"], any("running"))
	assertContains(t, "Config.Env", fmt.Sprint(d["Config"].(map[string]any)["Env"]), "K=V")
	assertEqual(t, "nook container inspect", strings.TrimSpace(s.mustNook(t, "container", "inspect", "--format", "{{.Id}}", name).Stdout), id)
	if !published {
		skipf(t, "port publishing: %s", slirpUnusable())
	}
	assertEqual(t, "nook port", s.mustNook(t, "port", name).Stdout, fmt.Sprintf("80/tcp -> 127.0.0.1:%d\n", port))
	assertEqual(t, "nook port 80", s.mustNook(t, "port", name, "80").Stdout, fmt.Sprintf("127.0.0.1:%d\n", port))
	assertContains(t, "PORTS column", s.mustNook(t, "ps").Stdout, fmt.Sprintf("127.0.0.1:%d->80/tcp", port))
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && got == ""; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		got = strings.TrimSpace(string(b))
	}
	assertEqual(t, "reply through the port a detached container published", got, "hello-port")
}

// top lists the container's processes.
func TestLifecycleTop(t *testing.T) {
	s := useMain(t)
	name := "lp" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", name, "demo", "sh", "-c", "sleep 31337 & "+termTrap)
	waitLog(t, s, name, "ready", 10*time.Second)
	out := s.mustNook(t, "top", name).Stdout
	assertMatch(t, "nook top header", out, `^UID\s+PID\s+PPID\s+CMD\n`)
	assertContains(t, "nook top", out, "sleep 31337")
	assertContains(t, "nook top", out, "sh -c sleep 31337")
}

// After a reboot the run root is empty: a container that was running shows as exited, never as
// a running ghost, and can be started again or removed. Simulated: the monitor is killed (with
// it the container) and the run root removed.
func TestLifecycleAfterReboot(t *testing.T) {
	s := newStore(t, "reboot", storeOptions{}, false)
	id := runDetached(t, s, "--name", "boot", "demo", "sh", "-c", termTrap)
	waitLog(t, s, "boot", "ready", 10*time.Second)
	_, _, pid, _ := inspectState(t, s, "boot")
	for p, cmd := range userProcs() {
		if strings.HasPrefix(cmd, "nook-monitor ") && isAncestor(p, pid) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's init outlived its monitor")
		}
	}
	if err := os.RemoveAll(s.runRoot()); err != nil {
		t.Fatalf("remove the run root: %v", err)
	}
	assertMatch(t, "STATUS after the run root is gone", psStatus(t, s, "boot"), `^Exited \(137\)`)
	assertNotContains(t, "nook ps", s.mustNook(t, "ps").Stdout, "boot")
	s.mustNook(t, "start", "boot")
	waitLog(t, s, "boot", "ready", 10*time.Second)
	assertMatch(t, "STATUS after start", psStatus(t, s, "boot"), "^Up ")
	s.mustNook(t, "rm", "-f", id)
}
