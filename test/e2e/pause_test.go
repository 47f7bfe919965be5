package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The pause process (docs/decisions.md, "The pause process"): consecutive commands share one
// user and mount namespace, held by bin/nook-pause, which exits NOOK_PAUSE_LINGER after the
// last process in it.

type pauseRecord struct {
	Pid    int    `json:"pid"`
	Start  string `json:"start"`
	UserNS uint64 `json:"userns"`
}

// pauseRecords reads the run root's pause records.
func pauseRecords(t *testing.T, s *store) map[string]pauseRecord {
	t.Helper()
	out := map[string]pauseRecord{}
	files, _ := filepath.Glob(filepath.Join(s.runRoot(), "pause-*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r pauseRecord
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("pause record %s: %v (%q)", f, err, b)
		}
		out[filepath.Base(f)] = r
	}
	return out
}

// pauseProcs are this user's pause processes.
func pauseProcs() map[int]bool {
	out := map[int]bool{}
	for pid, cmd := range userProcs() {
		if strings.HasPrefix(cmd, "nook-pause pause ") {
			out[pid] = true
		}
	}
	return out
}

// userNS is the user namespace a container's process runs in, "user:[INODE]".
func userNS(t *testing.T, s *store, env []string) string {
	t.Helper()
	r := s.nookEnv(t, env, "", "run", "--rm", "--network", "none", "demo", "readlink", "/proc/self/ns/user")
	assertExit(t, r, 0)
	return strings.TrimSpace(r.Stdout)
}

func nsLink(pid int, ns string) string {
	l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	return l
}

func waitNoPause(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		if !pauseProcs()[pid] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pause process %d still runs %s after its last user", pid, within)
		}
	}
}

// Two commands run in the same user namespace, the pause's, which is the one its record names;
// with NOOK_PAUSE_LINGER=0 each has its own and no pause is started.
func TestPauseShared(t *testing.T) {
	s := newStore(t, "pause", storeOptions{}, false)
	env := []string{"NOOK_PAUSE_LINGER=5s"}
	// The command that starts the pause was given descriptors 3 and 4 without close-on-exec
	// (as a shell's `exec 4>file` would): the pause must not keep them.
	held, err := os.Create(filepath.Join(t.TempDir(), "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	first := s.command(context.Background(), env, "ps")
	first.ExtraFiles = []*os.File{held, held}
	if out, err := first.CombinedOutput(); err != nil {
		t.Fatalf("nook ps: %v\n%s", err, out)
	}
	a := userNS(t, s, env)
	b := userNS(t, s, env)
	assertEqual(t, "user namespace of two consecutive containers", a, b)
	recs := pauseRecords(t, s)
	if len(recs) != 1 {
		t.Fatalf("want one pause record in %s, got %v", s.runRoot(), recs)
	}
	for _, r := range recs {
		if !pauseProcs()[r.Pid] {
			t.Fatalf("the pause record names pid %d, which is not a running nook-pause", r.Pid)
		}
		assertEqual(t, "the containers' user namespace", a, nsLink(r.Pid, "user"))
		assertEqual(t, "the record's user namespace", fmt.Sprintf("user:[%d]", r.UserNS), a)
		assertEqual(t, "the pause's mount namespace is not the host's", nsLink(r.Pid, "mnt") != nsLink(os.Getpid(), "mnt"), true)
		// It holds nothing open but /dev/null and its signalfd: not the CLI's pipes, not
		// whatever the CLI inherited.
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", r.Pid))
		for _, fd := range fds {
			l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", r.Pid, fd.Name()))
			if l != "/dev/null" && l != "anon_inode:[signalfd]" {
				t.Errorf("the pause holds fd %s open: %s", fd.Name(), l)
			}
		}
		_ = syscall.Kill(r.Pid, syscall.SIGTERM)
		waitNoPause(t, r.Pid, 5*time.Second)
	}

	off := []string{"NOOK_PAUSE_LINGER=0"}
	before := pauseProcs()
	c := userNS(t, s, off)
	d := userNS(t, s, off)
	if c == d {
		t.Errorf("with NOOK_PAUSE_LINGER=0 two containers share user namespace %s", c)
	}
	for pid := range pauseProcs() {
		if !before[pid] {
			t.Errorf("with NOOK_PAUSE_LINGER=0 a pause process was started (pid %d)", pid)
		}
	}
	// A bad value turns the pause off for that command, which says so and runs.
	r := s.nookEnv(t, []string{"NOOK_PAUSE_LINGER=soon"}, "", "ps")
	assertExit(t, r, 0)
	assertContains(t, "stderr with a bad NOOK_PAUSE_LINGER", r.Stderr, `NOOK_PAUSE_LINGER="soon" is not a duration`)
}

// The pause outlives its last user by NOOK_PAUSE_LINGER, and no longer; a detached
// container's monitor keeps it, its removal lets it go.
func TestPauseLinger(t *testing.T) {
	s := newStore(t, "pauselinger", storeOptions{}, false)
	env := []string{"NOOK_PAUSE_LINGER=1500ms"}
	r := s.nookEnv(t, env, "", "ps")
	assertExit(t, r, 0)
	recs := pauseRecords(t, s)
	if len(recs) != 1 {
		t.Fatalf("want one pause record, got %v", recs)
	}
	var pid int
	for _, rec := range recs {
		pid = rec.Pid
	}
	// Commands closer together than the linger keep using it.
	for i := 0; i < 3; i++ {
		time.Sleep(700 * time.Millisecond)
		assertExit(t, s.nookEnv(t, env, "", "ps"), 0)
		if !pauseProcs()[pid] {
			t.Fatalf("pause %d ended %d ms after a command, with a linger of 1500 ms", pid, 700)
		}
	}
	r = s.nookEnv(t, env, "", "run", "-d", "--network", "none", "--name", "held", "demo", "sleep", "1000")
	assertExit(t, r, 0)
	time.Sleep(4 * time.Second)
	if !pauseProcs()[pid] {
		t.Fatalf("pause %d ended while a detached container's monitor was in its namespace", pid)
	}
	assertExit(t, s.nookEnv(t, env, "", "rm", "-f", "held"), 0)
	waitNoPause(t, pid, 5*time.Second)
}

// A killed pause costs nothing: a container started in its namespace is still stopped and
// removed, and the next command starts a new pause.
func TestPauseKilled(t *testing.T) {
	s := newStore(t, "pausekill", storeOptions{}, false)
	env := []string{"NOOK_PAUSE_LINGER=10s"}
	assertExit(t, s.nookEnv(t, env, "", "run", "-d", "--network", "none", "--name", "old", "demo", "sh", "-c", termTrap), 0)
	waitLog(t, s, "old", "ready", 10*time.Second)
	recs := pauseRecords(t, s)
	if len(recs) != 1 {
		t.Fatalf("want one pause record, got %v", recs)
	}
	var first pauseRecord
	for _, rec := range recs {
		first = rec
	}
	_ = syscall.Kill(first.Pid, syscall.SIGKILL)
	waitNoPause(t, first.Pid, 5*time.Second)

	a := userNS(t, s, env)
	var second pauseRecord
	for _, rec := range pauseRecords(t, s) {
		second = rec
	}
	if second.Pid == first.Pid || !pauseProcs()[second.Pid] {
		t.Fatalf("no new pause after the first (pid %d) was killed: record %+v", first.Pid, second)
	}
	assertEqual(t, "a container's user namespace after the restart", a, nsLink(second.Pid, "user"))
	assertExit(t, s.nookEnv(t, env, "", "stop", "-t", "5", "old"), 0)
	assertMatch(t, "STATUS", psStatus(t, s, "old"), `^Exited \(3\) `)
	assertExit(t, s.nookEnv(t, env, "", "rm", "old"), 0)
	_ = syscall.Kill(second.Pid, syscall.SIGTERM)
	waitNoPause(t, second.Pid, 5*time.Second)

	// A stale record whose pid is now another process (this test) is not joined.
	for name := range pauseRecords(t, s) {
		st, _ := os.ReadFile("/proc/self/stat")
		f := strings.Fields(string(st)[strings.LastIndexByte(string(st), ')')+1:])
		b, _ := json.Marshal(map[string]any{"pid": os.Getpid(), "start": f[19], "userns": 1, "mntns": 1})
		if err := os.WriteFile(filepath.Join(s.runRoot(), name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := userNS(t, s, env)
	if c == nsLink(os.Getpid(), "user") {
		t.Fatalf("a container ran in the test's own user namespace %s", c)
	}
	for _, rec := range pauseRecords(t, s) {
		if rec.Pid == os.Getpid() || !pauseProcs()[rec.Pid] {
			t.Fatalf("the stale record was not replaced by a running pause: %+v", rec)
		}
		_ = syscall.Kill(rec.Pid, syscall.SIGTERM)
		waitNoPause(t, rec.Pid, 5*time.Second)
	}
}

// A command whose mapping differs (single-ID mode without a subordinate range) never joins the
// pause of another mapping: it gets a pause of its own, with its own mapping.
func TestPauseMappingChange(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "pausemap", storeOptions{}, false)
	env := []string{"NOOK_PAUSE_LINGER=10s"}
	full := userNS(t, s, env)
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	single := append(env, "NOOK_SUBUID_FILE="+empty, "NOOK_SUBGID_FILE="+empty)
	r := s.nookEnv(t, single, "", "run", "--rm", "--network", "none", "demo", "sh", "-c", "readlink /proc/self/ns/user; cat /proc/self/uid_map")
	assertExit(t, r, 0)
	lines := r.Lines()
	if len(lines) != 2 {
		t.Fatalf("want the namespace and one map line, got %q", r.Stdout)
	}
	if lines[0] == full {
		t.Errorf("single-ID container ran in the subordinate-range namespace %s", full)
	}
	assertEqual(t, "single-ID uid_map", strings.Join(strings.Fields(lines[1]), " "), "0 "+strconv.Itoa(hostUID)+" 1")
	recs := pauseRecords(t, s)
	if len(recs) != 2 {
		t.Fatalf("want a pause record per mapping, got %v", recs)
	}
	for _, rec := range recs {
		_ = syscall.Kill(rec.Pid, syscall.SIGTERM)
		waitNoPause(t, rec.Pid, 5*time.Second)
	}
}

// Nooks started at once on a run root without a pause start exactly one.
func TestPauseConcurrentStart(t *testing.T) {
	s := newStore(t, "pauseconc", storeOptions{}, false)
	env := []string{"NOOK_PAUSE_LINGER=10s"}
	before := pauseProcs()
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = s.nookEnv(t, env, "", "ps", "-a").Code
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 0 {
			t.Errorf("nook ps #%d: exit %d", i, c)
		}
	}
	var started []int
	for pid := range pauseProcs() {
		if !before[pid] {
			started = append(started, pid)
		}
	}
	if len(started) != 1 {
		t.Fatalf("8 nooks at once started %d pause processes (%v), want 1", len(started), started)
	}
	_ = syscall.Kill(started[0], syscall.SIGTERM)
	waitNoPause(t, started[0], 5*time.Second)
}
