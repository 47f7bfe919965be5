package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// cgroupDelegated says whether this host gives the test user a cgroup v2
// subtree with the controllers the limits need; when not, why.
func cgroupDelegated(t *testing.T, s *store, ctrls ...string) (bool, string) {
	t.Helper()
	info := s.mustNook(t, "info").Stdout
	var delegated []string
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "delegatedControllers:"); ok {
			delegated = strings.Fields(v)
		}
	}
	for _, c := range ctrls {
		found := false
		for _, d := range delegated {
			found = found || d == c
		}
		if !found {
			return false, fmt.Sprintf("the %s controller is not delegated (nook info: %v)", c, delegated)
		}
	}
	return true, ""
}

// assertNotDelegatedError: the limit is refused before anything starts,
// exit 125, one line that says why and how to get delegation; no container
// is left.
func assertNotDelegatedError(t *testing.T, s *store, r result) {
	t.Helper()
	assertExit(t, r, 125)
	assertErrorLine(t, r, "cgroup", "delegat")
	assertEqual(t, "stdout of a refused run", r.Stdout, "")
	if ids := s.nook(t, "ps", "-a", "-q").Stdout; strings.TrimSpace(ids) != "" {
		t.Errorf("a refused run left containers: %q", ids)
	}
}

// TestLimitForkBombUlimit: a bounded fork bomb under --ulimit nproc stops
// at the limit (RLIMIT_NPROC counts per user namespace); the host keeps
// running and no process outlives the container (leak check).
func TestLimitForkBombUlimit(t *testing.T) {
	s := useMain(t)
	const limit = 40
	r := s.nook(t, "run", "--rm", "--ulimit", fmt.Sprintf("nproc=%d", limit), "demo", "sh", "-c",
		// A failed fork ends a non-interactive shell: the bomb runs in a
		// subshell, the count uses builtins only (no fork left to make).
		"(i=0; while [ $i -lt 400 ]; do sleep 60 & i=$((i+1)); done) 2>/dev/null; set -- /proc/[0-9]*; echo $#; ulimit -u")
	assertExit(t, r, 0)
	lines := r.Lines()
	if len(lines) < 2 {
		t.Fatalf("no count from the fork bomb: %q", r.Stdout)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
	if n == 0 || n > limit {
		t.Errorf("processes in the container: %d, want at most %d", n, limit)
	}
	assertEqual(t, "ulimit -u", strings.TrimSpace(lines[1]), strconv.Itoa(limit))
}

// TestLimitPidsLimit: --pids-limit on a delegated cgroup v2 host bounds the
// fork bomb; elsewhere it is refused clearly.
func TestLimitPidsLimit(t *testing.T) {
	s := useMain(t)
	args := []string{"run", "--rm", "--pids-limit", "30", "demo", "sh", "-c",
		"(i=0; while [ $i -lt 300 ]; do sleep 60 & i=$((i+1)); done) 2>/dev/null; set -- /proc/[0-9]*; echo $#"}
	if ok, why := cgroupDelegated(t, s, "pids"); !ok {
		assertNotDelegatedError(t, s, s.nook(t, args...))
		skipf(t, "--pids-limit enforcement not proven: %s (the clear refusal was)", why)
	}
	r := s.nook(t, args...)
	assertExit(t, r, 0)
	lines := r.Lines()
	n, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
	if n == 0 || n > 30 {
		t.Errorf("processes: %d, want at most 30", n)
	}
}

// TestLimitMemory: --memory on a delegated host kills a process that
// allocates past it (exit 137); elsewhere it is refused clearly.
func TestLimitMemory(t *testing.T) {
	s := useMain(t)
	args := []string{"run", "--rm", "--memory", "32m", "--memory-swap", "32m", "demo", "sh", "-c",
		"cat /sys/fs/cgroup/memory.max; head -c 200m /dev/zero | tail > /dev/null; echo SURVIVED"}
	if ok, why := cgroupDelegated(t, s, "memory"); !ok {
		assertNotDelegatedError(t, s, s.nook(t, args...))
		skipf(t, "--memory enforcement not proven: %s (the clear refusal was)", why)
	}
	r := s.nook(t, args...)
	assertContains(t, "memory.max", r.Stdout, strconv.Itoa(32<<20))
	assertNotContains(t, "memory exhaustion", r.Stdout, "SURVIVED")
}

// TestLimitCPU: --cpus writes cpu.max; elsewhere it says why not. (`nook stats` works
// everywhere: TestStats.)
func TestLimitCPU(t *testing.T) {
	s := useMain(t)
	args := []string{"run", "--rm", "--cpus", "0.5", "demo", "cat", "/sys/fs/cgroup/cpu.max"}
	if ok, why := cgroupDelegated(t, s, "cpu"); !ok {
		assertNotDelegatedError(t, s, s.nook(t, args...))
		skipf(t, "--cpus not proven: %s (the clear refusal was)", why)
	}
	r := s.mustNook(t, args...)
	assertEqual(t, "cpu.max", strings.TrimSpace(r.Stdout), "50000 100000")
}

// TestLimitRefusedLimits: every cgroup flag is refused the same way here,
// and bad values are refused everywhere.
func TestLimitRefusedLimits(t *testing.T) {
	s := useMain(t)
	if ok, _ := cgroupDelegated(t, s, "memory", "pids", "cpu"); !ok {
		for _, f := range [][]string{{"--memory", "256m"}, {"--cpus", "0.5"}, {"--pids-limit", "100"}, {"-m", "1g", "--memory-swap", "2g"}} {
			assertNotDelegatedError(t, s, s.nook(t, append(append([]string{"run", "--rm"}, f...), "demo", "true")...))
		}
	}
	for _, f := range [][]string{{"--memory", "lots"}, {"--cpus", "-1"}, {"--memory-swap", "1g"}, {"--ulimit", "nofile"}, {"--ulimit", "bogus=1"}, {"--ulimit", "nofile=10:5"}} {
		r := s.nook(t, append(append([]string{"run", "--rm"}, f...), "demo", "true")...)
		assertExit(t, r, 125)
		assertErrorLine(t, r, f[0])
	}
}

// TestLimitUlimit: rlimits apply everywhere; asking above the current hard
// limit (no CAP_SYS_RESOURCE on the host) is a clear error naming it.
func TestLimitUlimit(t *testing.T) {
	s := useMain(t)
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	out := s.sh(t, "ulimit -Sn; ulimit -Hn; ulimit -Sc; ulimit -Hc", "--ulimit", "nofile=1024:2048", "--ulimit", "core=0:0")
	assertEqual(t, "ulimits", out, "1024\n2048\n0\n0\n")
	if nofile.Max != unix.RLIM_INFINITY {
		above := strconv.FormatUint(nofile.Max+1, 10)
		r := s.nook(t, "run", "--rm", "--ulimit", "nofile="+above+":"+above, "demo", "true")
		assertExit(t, r, 125)
		assertErrorLine(t, r, "nofile", strconv.FormatUint(nofile.Max, 10), "CAP_SYS_RESOURCE")
	}
}

// TestLimitInfoControllers: nook info names the usable controllers, or says
// there are none and why.
func TestLimitInfoControllers(t *testing.T) {
	s := useMain(t)
	info := s.mustNook(t, "info").Stdout
	assertContains(t, "nook info", info, "delegatedControllers:")
	if ok, _ := cgroupDelegated(t, s, "memory"); !ok {
		assertMatch(t, "nook info without delegation", info, `(?m)^  # .*(delegat|cgroup v2)`)
	}
}

// TestLimitVolumes: named volumes are created on first use, writable by the
// container's root (the user), kept between containers, listed, inspected,
// refused removal while a container uses them, pruned when unused.
func TestLimitVolumes(t *testing.T) {
	s := newStore(t, "volumes", storeOptions{}, false)
	s.mustNook(t, "volume", "create", "data")
	s.sh(t, "echo hello > /v/file; mkdir /v/dir; chown 1000:1000 /v/dir", "-v", "data:/v")
	assertEqual(t, "volume content", s.sh(t, "cat /data/file", "--mount", "type=volume,source=data,target=/data,readonly"), "hello\n")
	r := s.nook(t, "run", "--rm", "-v", "data:/v:ro", "demo", "sh", "-c", "echo x > /v/file")
	if r.Code == 0 {
		t.Errorf("a read-only volume was written")
	}
	ls := s.mustNook(t, "volume", "ls").Stdout
	assertMatch(t, "volume ls", ls, `(?m)^DRIVER\s+VOLUME NAME\n(.*\n)*local\s+data$`)
	in := s.mustNook(t, "volume", "inspect", "data").Stdout
	mp := filepath.Join(s.graphRoot(), "volumes", "data", "_data")
	assertContains(t, "volume inspect", in, `"Mountpoint": "`+mp+`"`)
	if b, err := os.ReadFile(filepath.Join(mp, "file")); err != nil || string(b) != "hello\n" {
		t.Errorf("the volume's file on the host: %q, %v", b, err)
	}
	if st, err := os.Stat(mp); err == nil {
		if uid := st.Sys().(*syscall.Stat_t).Uid; int(uid) != hostUID {
			t.Errorf("the volume belongs to uid %d, want the user %d", uid, hostUID)
		}
	}

	s.mustNook(t, "run", "--name", "keeper", "-v", "data:/v", "demo", "true")
	r = s.nook(t, "volume", "rm", "data")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "in use")
	s.mustNook(t, "rm", "keeper")
	s.mustNook(t, "volume", "create", "unused")
	pruned := s.mustNook(t, "volume", "prune").Stdout
	assertEqual(t, "volume prune", pruned, "data\nunused\n")
	assertEqual(t, "volume ls -q after prune", s.mustNook(t, "volume", "ls", "-q").Stdout, "")
}

// TestLimitBindAndTmpfs: -v host paths (ro, rw, z), --mount type=bind and
// --tmpfs on a --read-only root.
func TestLimitBindAndTmpfs(t *testing.T) {
	s := useMain(t)
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	out := s.sh(t, "echo rw > /rw/f && cat /ro/f; (echo x > /ro/g) 2>/dev/null || echo ro-refused; touch /root-file 2>/dev/null || echo root-ro; touch /tmp/t && echo tmp-ok; touch /run/r && echo run-ok",
		"-v", dir+":/rw:z", "--mount", "type=bind,src="+dir+",dst=/ro,readonly", "--read-only", "--tmpfs", "/tmp", "--tmpfs", "/run:size=1m")
	assertEqual(t, "binds and tmpfs", out, "rw\nro-refused\nroot-ro\ntmp-ok\nrun-ok\n")
	r := s.nook(t, "run", "--rm", "-v", "/no/such/dir:/x", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "/no/such/dir")
}
