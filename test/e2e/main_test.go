// Package e2e is nook's end-to-end suite: it runs the real binary (NOOK_BIN) as
// an unprivileged user and checks what a user of Docker or Podman would see.
// test/run-e2e.sh runs it, as a dedicated user when started as root.
package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Global state set up once by TestMain.
var (
	nookBin     string // absolute path of bin/nook
	baseDir     string // everything the suite creates lives here
	busyboxTar  string // the test image, a busybox root filesystem
	demoID      string // "sha256:..." of demo in the main store
	mainStore   *store
	hostUID     = os.Getuid()
	hostGID     = os.Getgid()
	userName    string
	subUIDs     []idRange // the user's subordinate UID ranges
	subGIDs     []idRange
	subIDSource string // "getsubids" or "/etc/subuid"

	skippedMu sync.Mutex
	skipped   []string
)

type idRange struct{ start, count int }

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
		return 1
	}
	if hostUID == 0 {
		return fail("the end-to-end suite runs as an unprivileged user; as root use test/run-e2e.sh, which creates one")
	}
	nookBin = os.Getenv("NOOK_BIN")
	if nookBin == "" {
		nookBin = "../../bin/nook"
	}
	abs, err := filepath.Abs(nookBin)
	if err != nil {
		return fail("NOOK_BIN: %v", err)
	}
	nookBin = abs
	if st, err := os.Stat(nookBin); err != nil || st.Mode()&0o111 == 0 {
		return fail("nook binary %s is missing or not executable (set NOOK_BIN, or run `make build`)", nookBin)
	}
	u, err := user.Current()
	if err != nil {
		return fail("who am I: %v", err)
	}
	userName = u.Username
	subUIDs, subGIDs, subIDSource = readSubIDs(userName, hostUID)

	// The prefix must not match /tmp/nook-*, which the leak check watches.
	baseDir, err = os.MkdirTemp("", "e2e-nook-")
	if err != nil {
		return fail("%v", err)
	}
	defer removeAll(baseDir)

	busyboxTar = filepath.Join(baseDir, "busybox.tar")
	if err := writeBusyboxTar(busyboxTar); err != nil {
		return fail("build the busybox image: %v", err)
	}
	mainStore, err = createStore("main", storeOptions{})
	if err != nil {
		return fail("%v", err)
	}
	r := mainStore.exec(context.Background(), nil, "", "import", busyboxTar, "demo")
	if r.Code != 0 {
		return fail("nook import %s demo: exit %d\nstdout: %s\nstderr: %s", busyboxTar, r.Code, r.Stdout, r.Stderr)
	}
	demoID = strings.TrimSpace(r.Stdout)

	code := m.Run()

	for _, s := range allStores() {
		s.purge()
	}
	skippedMu.Lock()
	if len(skipped) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: %d check(s) skipped, NOT proven on this host:\n", len(skipped))
		for _, s := range skipped {
			fmt.Fprintf(os.Stderr, "  - %s\n", s)
		}
	}
	skippedMu.Unlock()
	return code
}

// skipf skips the test with a reason and records it for the summary.
func skipf(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	skippedMu.Lock()
	skipped = append(skipped, t.Name()+": "+msg)
	skippedMu.Unlock()
	t.Skip(msg)
}

// readSubIDs returns the user's subordinate ranges the way nook finds them:
// getsubids when installed, otherwise /etc/subuid and /etc/subgid.
func readSubIDs(name string, uid int) (uids, gids []idRange, source string) {
	if p, err := exec.LookPath("getsubids"); err == nil {
		u, uerr := exec.Command(p, name).Output()
		g, gerr := exec.Command(p, "-g", name).Output()
		if uerr == nil && gerr == nil {
			return parseGetsubids(string(u)), parseGetsubids(string(g)), "getsubids"
		}
	}
	return parseSubIDFile("/etc/subuid", name, uid), parseSubIDFile("/etc/subgid", name, uid), "/etc/subuid"
}

// parseGetsubids reads lines like "0: alice 100000 65536".
func parseGetsubids(out string) []idRange {
	var rs []idRange
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		s, err1 := strconv.Atoi(f[2])
		c, err2 := strconv.Atoi(f[3])
		if err1 == nil && err2 == nil {
			rs = append(rs, idRange{s, c})
		}
	}
	return rs
}

func parseSubIDFile(path, name string, uid int) []idRange {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var rs []idRange
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != name && f[0] != strconv.Itoa(uid)) {
			continue
		}
		s, err1 := strconv.Atoi(f[1])
		c, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil {
			rs = append(rs, idRange{s, c})
		}
	}
	return rs
}

// requireSubIDs fails the test when the user has no subordinate ranges: the
// behaviour under test needs them, and the harness is expected to provide them.
func requireSubIDs(t *testing.T) {
	t.Helper()
	if len(subUIDs) == 0 || len(subGIDs) == 0 {
		t.Fatalf("user %s (uid %d) has no subordinate UID/GID range (looked in %s); "+
			"this test needs one: usermod --add-subuids 200000-265535 --add-subgids 200000-265535 %s",
			userName, hostUID, subIDSource, userName)
	}
}

// hostIDFor maps a container ID to the host ID in subordinate mode.
func hostIDFor(t *testing.T, rs []idRange, self, id int) int {
	t.Helper()
	if id == 0 {
		return self
	}
	next := 1
	for _, r := range rs {
		if id < next+r.count {
			return r.start + id - next
		}
		next += r.count
	}
	t.Fatalf("container ID %d is outside the subordinate ranges %v", id, rs)
	return -1
}

// writeBusyboxTar builds the test image: /bin/busybox (static) with every applet
// linked in /bin, a passwd and group with root, user (1000) and nobody, and the
// usual empty directories. Owners are numeric, times fixed: same input, same bytes.
func writeBusyboxTar(out string) error {
	const bb = "/bin/busybox"
	bin, err := os.ReadFile(bb)
	if err != nil {
		return fmt.Errorf("%v (install busybox-static)", err)
	}
	if i := bytes.Index(bin[:min(len(bin), 1024)], []byte("ld-linux")); i >= 0 {
		return fmt.Errorf("%s is dynamically linked; install busybox-static", bb)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %v", bb, err)
	}
	applets := strings.Fields(string(list))
	sort.Strings(applets)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dir := func(name string, mode int64, id int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: id, Gid: id, ModTime: epoch, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []struct {
		name string
		mode int64
		id   int
	}{
		{"bin", 0o755, 0}, {"dev", 0o755, 0}, {"etc", 0o755, 0}, {"home", 0o755, 0},
		{"home/user", 0o755, 1000}, {"proc", 0o555, 0}, {"root", 0o700, 0}, {"run", 0o755, 0},
		{"sbin", 0o755, 0}, {"sys", 0o555, 0}, {"tmp", 0o1777, 0}, {"usr", 0o755, 0},
		{"usr/bin", 0o755, 0}, {"usr/sbin", 0o755, 0}, {"var", 0o755, 0}, {"var/tmp", 0o1777, 0},
	} {
		if err := dir(d.name, d.mode, d.id); err != nil {
			return err
		}
	}
	if err := file("bin/busybox", 0o755, bin); err != nil {
		return err
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")); err != nil {
		return err
	}
	if err := file("etc/group", 0o644, []byte("root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// ---- stores ----------------------------------------------------------------

// A store is one nook configuration: its own XDG_DATA_HOME (graph root) and
// XDG_RUNTIME_DIR (run root), plus environment and global flags.
type store struct {
	name       string
	dataHome   string
	runtimeDir string // "" when XDG_RUNTIME_DIR is unset for this store
	env        []string
	flags      []string // global flags put before the command
	watchDirs  []string // run-root directories the leak check walks
}

type storeOptions struct {
	env          []string
	flags        []string
	noRuntimeDir bool // leave XDG_RUNTIME_DIR unset
}

var (
	storesMu sync.Mutex
	stores   []*store
)

func allStores() []*store {
	storesMu.Lock()
	defer storesMu.Unlock()
	return append([]*store(nil), stores...)
}

func createStore(name string, o storeOptions) (*store, error) {
	dir, err := os.MkdirTemp(baseDir, name+"-")
	if err != nil {
		return nil, err
	}
	s := &store{name: name, dataHome: filepath.Join(dir, "data"), env: o.env, flags: o.flags}
	if err := os.Mkdir(s.dataHome, 0o700); err != nil {
		return nil, err
	}
	if o.noRuntimeDir {
		s.watchDirs = []string{fmt.Sprintf("/tmp/nook-%d", hostUID)}
	} else {
		s.runtimeDir = filepath.Join(dir, "run")
		if err := os.Mkdir(s.runtimeDir, 0o700); err != nil {
			return nil, err
		}
		s.watchDirs = []string{s.runtimeDir}
	}
	storesMu.Lock()
	stores = append(stores, s)
	storesMu.Unlock()
	return s, nil
}

// useMain returns the shared store (demo imported) and arms the leak check.
func useMain(t *testing.T) *store {
	t.Helper()
	checkLeaks(t)
	return mainStore
}

// newStore makes a fresh store for this test, arms the leak check, and imports
// the busybox image as demo unless noImport.
func newStore(t *testing.T, name string, o storeOptions, noImport bool) *store {
	t.Helper()
	s, err := createStore(name, o)
	if err != nil {
		t.Fatal(err)
	}
	checkLeaks(t)
	t.Cleanup(s.purge)
	if !noImport {
		r := s.nook(t, "import", busyboxTar, "demo")
		if r.Code != 0 {
			t.Fatalf("nook import of the busybox image into store %s: exit %d\n%s", name, r.Code, r)
		}
	}
	return s
}

func (s *store) graphRoot() string { return filepath.Join(s.dataHome, "nook") }

func (s *store) runRoot() string {
	if s.runtimeDir == "" {
		return fmt.Sprintf("/tmp/nook-%d", hostUID)
	}
	return filepath.Join(s.runtimeDir, "nook")
}

// environ is a clean environment for nook: the caller's, minus XDG_* and NOOK_*,
// plus this store's locations and settings, plus extra.
func (s *store) environ(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "XDG_") || strings.HasPrefix(kv, "NOOK_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "XDG_DATA_HOME="+s.dataHome)
	if s.runtimeDir != "" {
		env = append(env, "XDG_RUNTIME_DIR="+s.runtimeDir)
	}
	// The pause process (decisions.md) outlives the last process in its namespaces by 300 ms
	// instead of 10 minutes, so that it is gone well within the leak check's grace period:
	// consecutive commands of a test still share it. TestPause* set their own.
	env = append(env, "NOOK_PAUSE_LINGER=300ms")
	env = append(env, s.env...)
	return append(env, extra...)
}

// command prepares nook with this store's environment and flags, in its own
// process group (so that a timeout can kill everything it started).
func (s *store) command(ctx context.Context, extraEnv []string, args ...string) *exec.Cmd {
	full := append(append([]string(nil), s.flags...), args...)
	cmd := exec.CommandContext(ctx, nookBin, full...)
	cmd.Env = s.environ(extraEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// result is what one nook invocation did.
type result struct {
	Args           []string
	Stdout, Stderr string
	Code           int
	Err            error // set when nook could not be started or timed out
}

func (r result) String() string {
	return fmt.Sprintf("$ nook %s\n[exit %d]\n--- stdout ---\n%s--- stderr ---\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Lines returns stdout's lines without the trailing empty one.
func (r result) Lines() []string {
	s := strings.TrimRight(r.Stdout, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

const defaultTimeout = 90 * time.Second

// exec runs nook to completion; stdin may be nil. It never fails the test.
func (s *store) exec(ctx context.Context, extraEnv []string, stdin string, args ...string) result {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	cmd := s.command(ctx, extraEnv, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{Args: append(append([]string(nil), s.flags...), args...), Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		r.Code, r.Err = -1, fmt.Errorf("timed out after %v", defaultTimeout)
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Err = fmt.Errorf("nook itself was killed by %v", ws.Signal())
		}
	default:
		r.Code, r.Err = -1, err
	}
	return r
}

// nook runs nook in this store and logs what happened.
func (s *store) nook(t *testing.T, args ...string) result {
	t.Helper()
	return s.nookEnv(t, nil, "", args...)
}

// nookEnv is nook with extra environment and standard input.
func (s *store) nookEnv(t *testing.T, extraEnv []string, stdin string, args ...string) result {
	t.Helper()
	r := s.exec(context.Background(), extraEnv, stdin, args...)
	t.Logf("%s", truncate(r.String(), 4000))
	if r.Err != nil {
		t.Errorf("nook %s: %v", strings.Join(args, " "), r.Err)
	}
	return r
}

// mustNook runs nook and fails the test unless it exits 0 with no stderr.
func (s *store) mustNook(t *testing.T, args ...string) result {
	t.Helper()
	r := s.nook(t, args...)
	if r.Code != 0 {
		t.Fatalf("nook %s: exit %d, want 0\nstderr: %s", strings.Join(args, " "), r.Code, r.Stderr)
	}
	if r.Stderr != "" {
		t.Fatalf("nook %s succeeded but wrote to stderr: %q", strings.Join(args, " "), r.Stderr)
	}
	return r
}

// run is `nook run --rm demo sh -c SCRIPT`, which must succeed.
func (s *store) sh(t *testing.T, script string, runFlags ...string) string {
	t.Helper()
	args := append([]string{"run", "--rm"}, runFlags...)
	args = append(args, "demo", "sh", "-c", script)
	return s.mustNook(t, args...).Stdout
}

// purge removes every container and image of the store (best effort).
func (s *store) purge() {
	ctx := context.Background()
	if ids := strings.Fields(s.exec(ctx, nil, "", "ps", "-a", "-q").Stdout); len(ids) > 0 {
		s.exec(ctx, nil, "", append([]string{"rm", "-f"}, ids...)...)
	}
	if ids := strings.Fields(s.exec(ctx, nil, "", "images", "-q").Stdout); len(ids) > 0 {
		s.exec(ctx, nil, "", append([]string{"rmi"}, ids...)...)
	}
}

// liveIDs are the short IDs of the store's containers and images.
func (s *store) liveIDs() map[string]bool {
	ids := map[string]bool{}
	for _, args := range [][]string{{"ps", "-a", "-q"}, {"images", "-q"}} {
		for _, id := range strings.Fields(s.exec(context.Background(), nil, "", args...).Stdout) {
			id = strings.TrimPrefix(id, "sha256:")
			if len(id) >= 12 {
				ids[id[:12]] = true
			}
		}
	}
	return ids
}

// removeAll deletes dir; files left owned by subordinate IDs (a failed removal
// by nook) are deleted from a user namespace that maps them, via unshare.
func removeAll(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	if len(subUIDs) > 0 && len(subGIDs) > 0 {
		args := []string{"--map-root-user",
			fmt.Sprintf("--map-users=%d,1,%d", subUIDs[0].start, subUIDs[0].count),
			fmt.Sprintf("--map-groups=%d,1,%d", subGIDs[0].start, subGIDs[0].count),
			"rm", "-rf", dir}
		if out, err := exec.Command("unshare", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: cleanup: unshare rm -rf %s: %v: %s\n", dir, err, out)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		fmt.Fprintf(os.Stderr, "e2e: cleanup: could not remove %s\n", dir)
	}
}

// ---- assertions --------------------------------------------------------------

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n[... truncated]"
}

func assertExit(t *testing.T, r result, want int) {
	t.Helper()
	if r.Code != want {
		t.Errorf("nook %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(r.Args, " "), r.Code, want, r.Stdout, r.Stderr)
	}
}

// assertErrorLine checks nook's error output: exactly one line, "Error: ...",
// containing each of the words (case-insensitive).
func assertErrorLine(t *testing.T, r result, words ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "Error: ") {
		t.Errorf("nook %s: stderr should be one line starting with \"Error: \", got %d line(s):\n%s", strings.Join(r.Args, " "), len(lines), r.Stderr)
		return
	}
	for _, w := range words {
		if !strings.Contains(strings.ToLower(lines[0]), strings.ToLower(w)) {
			t.Errorf("nook %s: error %q should mention %q", strings.Join(r.Args, " "), lines[0], w)
		}
	}
}

func assertEqual[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func assertContains(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s: %q does not contain %q", what, s, sub)
	}
}

func assertNotContains(t *testing.T, what, s, sub string) {
	t.Helper()
	if strings.Contains(s, sub) {
		t.Errorf("%s: %q should not contain %q", what, s, sub)
	}
}

func assertMatch(t *testing.T, what, s, re string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(s) {
		t.Errorf("%s: %q does not match /%s/", what, s, re)
	}
}

// ---- leak check ----------------------------------------------------------------
//
// After every test (t.Cleanup, armed by useMain/newStore):
//   - mounts: no line of /proc/self/mountinfo has a mount point under the
//     suite's directory, a store's run root, or /tmp/nook-UID;
//   - processes: no process of this user (or of its subordinate IDs) exists that
//     did not exist before the test (after a grace period of 5 s);
//   - temporary files: no new /tmp/nook-* entry except /tmp/nook-UID, the
//     documented run-root fallback;
//   - run roots: what nook may leave in a run root is bookkeeping, nothing
//     else. A new entry is allowed when it is a directory, or a regular file that
//     is one of: a lock (*.lock, lock), state (*.json), a cached probe result
//     (storage's feature checks such as storage/overlay/metacopy()-false, named
//     *-true or *-false, and nook's rootfs-mode probe, *-probe); and no
//     component of its path is a 12-64 hex ID that is not the ID of a container
//     or image that still exists. So state of a removed container, sockets,
//     FIFOs, pid files or any other file left behind is a leak.

type snapshot struct {
	procs map[int]string
	tmp   map[string]bool
	runs  map[string]map[string]fs.FileMode
}

var armed sync.Map // *testing.T -> bool

func checkLeaks(t *testing.T) {
	t.Helper()
	if _, loaded := armed.LoadOrStore(t, true); loaded {
		return
	}
	before := takeSnapshot()
	t.Cleanup(func() {
		armed.Delete(t)
		leakCheck(t, before)
	})
}

func watchedDirs() []string {
	dirs := map[string]bool{fmt.Sprintf("/tmp/nook-%d", hostUID): true}
	for _, s := range allStores() {
		for _, d := range s.watchDirs {
			dirs[d] = true
		}
	}
	var out []string
	for d := range dirs {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func takeSnapshot() snapshot {
	sn := snapshot{procs: userProcs(), tmp: map[string]bool{}, runs: map[string]map[string]fs.FileMode{}}
	matches, _ := filepath.Glob("/tmp/nook-*")
	for _, m := range matches {
		sn.tmp[m] = true
	}
	for _, d := range watchedDirs() {
		sn.runs[d] = walkTree(d)
	}
	return sn
}

// walkTree maps every path under root (relative) to its type.
func walkTree(root string) map[string]fs.FileMode {
	m := map[string]fs.FileMode{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		m[rel] = d.Type()
		return nil
	})
	return m
}

func inSubRange(id int) bool {
	for _, r := range subUIDs {
		if id >= r.start && id < r.start+r.count {
			return true
		}
	}
	return false
}

// userProcs lists processes whose real UID is ours or one of our subordinate
// IDs, except this test process.
func userProcs() map[int]string {
	procs := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		uid := -1
		for _, line := range strings.Split(string(st), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
				uid, _ = strconv.Atoi(f[1])
			}
		}
		if uid != hostUID && !inSubRange(uid) {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		procs[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return procs
}

func mountsUnder(dirs []string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{"cannot read /proc/self/mountinfo: " + err.Error()}
	}
	defer f.Close()
	var found []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				found = append(found, sc.Text())
			}
		}
	}
	return found
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

var hexID = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

func leakCheck(t *testing.T, before snapshot) {
	t.Helper()
	// Mounts.
	dirs := append([]string{baseDir}, watchedDirs()...)
	for _, m := range mountsUnder(dirs) {
		t.Errorf("leak: mount left behind: %s", m)
	}

	// Processes, with a grace period for helpers that are exiting.
	var extra map[int]string
	for deadline := time.Now().Add(5 * time.Second); ; {
		extra = map[int]string{}
		for pid, cmd := range userProcs() {
			if _, ok := before.procs[pid]; !ok {
				extra[pid] = cmd
			}
		}
		if len(extra) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for pid, cmd := range extra {
		t.Errorf("leak: process %d (%s) outlived the test", pid, cmd)
		_ = syscall.Kill(pid, syscall.SIGKILL) // do not let it spoil the next test
	}

	// /tmp/nook-*.
	matches, _ := filepath.Glob("/tmp/nook-*")
	for _, m := range matches {
		if !before.tmp[m] && m != fmt.Sprintf("/tmp/nook-%d", hostUID) {
			t.Errorf("leak: new temporary file %s", m)
		}
	}

	// Run roots.
	for _, s := range allStores() {
		for _, d := range s.watchDirs {
			var live map[string]bool
			old := before.runs[d]
			for rel, typ := range walkTree(d) {
				if _, ok := old[rel]; ok {
					continue
				}
				if !typ.IsDir() && !(typ.IsRegular() && allowedRunRootFile(filepath.Base(rel))) {
					t.Errorf("leak: %s left in the run root %s (type %v)", rel, d, typ)
					continue
				}
				for _, c := range strings.Split(rel, "/") {
					if !hexID.MatchString(c) {
						continue
					}
					if live == nil {
						live = s.liveIDs()
					}
					if !live[c[:12]] {
						t.Errorf("leak: %s in the run root %s belongs to no existing container or image", rel, d)
						break
					}
				}
			}
		}
	}
}

// allowedRunRootFile says whether a new regular file of this name in a run
// root is bookkeeping (see the leak check's rules above).
func allowedRunRootFile(base string) bool {
	for _, suffix := range []string{".lock", ".json", "-true", "-false", "-probe"} {
		if strings.HasSuffix(base, suffix) {
			return true
		}
	}
	return base == "lock"
}

// graphEntries lists the graph root's files, except lock files, for "nothing
// was added" checks.
func graphEntries(s *store) map[string]bool {
	m := map[string]bool{}
	for rel, typ := range walkTree(s.graphRoot()) {
		if !typ.IsDir() && strings.HasSuffix(rel, ".lock") {
			continue
		}
		m[rel] = true
	}
	return m
}

// emptyStoreIndex tells whether path is one of the store's index files of volatile records
// (--rm and build containers), which the store creates at the first such record and keeps,
// holding no record: not a leak. One that still lists a record is.
func emptyStoreIndex(path string) bool {
	switch filepath.Base(path) {
	case "volatile-containers.json", "volatile-layers.json":
	default:
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var records []json.RawMessage
	return json.Unmarshal(b, &records) == nil && len(records) == 0
}

// assertNoNewGraphEntries fails for every path in the graph root that was not
// in before (a leaked layer, container directory or staging file).
func assertNoNewGraphEntries(t *testing.T, s *store, before map[string]bool, what string) {
	t.Helper()
	var added []string
	for rel := range graphEntries(s) {
		if !before[rel] && !emptyStoreIndex(filepath.Join(s.graphRoot(), rel)) {
			added = append(added, rel)
		}
	}
	sort.Strings(added)
	if len(added) > 0 {
		t.Errorf("%s left %d new path(s) in the graph root %s: %s", what, len(added), s.graphRoot(), truncate(strings.Join(added, ", "), 2000))
	}
}

// staticHelper is a small Go program that tests build once (CGO_ENABLED=0, so static) and
// bind-mount into containers, for what busybox cannot do.
type staticHelper struct {
	name, src string
	once      sync.Once
	path      string // the directory holding the binary
	err       error
}

// dir builds the helper on first use and returns the directory that holds it.
func (h *staticHelper) dir(t *testing.T) string {
	t.Helper()
	h.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			for _, p := range []string{"/usr/local/go/bin/go", "/usr/lib/go/bin/go"} {
				if _, e := os.Stat(p); e == nil {
					goBin, err = p, nil
				}
			}
		}
		if err != nil {
			h.err = fmt.Errorf("no go toolchain to build the %s helper: %v", h.name, err)
			return
		}
		dir, src := filepath.Join(baseDir, h.name+"-helper"), filepath.Join(baseDir, h.name+"-helper-src")
		for _, d := range []string{dir, src} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				h.err = err
				return
			}
		}
		if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(h.src), 0o644); err != nil {
			h.err = err
			return
		}
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(dir, h.name), "main.go")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off", "GOFLAGS=",
			"GOCACHE="+filepath.Join(baseDir, "gocache"), "GOPATH="+filepath.Join(baseDir, "gopath"), "HOME="+baseDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			h.err = fmt.Errorf("go build %s helper: %v: %s", h.name, err, out)
			return
		}
		h.path = dir
	})
	if h.err != nil {
		t.Fatalf("%v", h.err)
	}
	return h.path
}
