package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// parseInfo reads nook info's two-level "section:\n  key: value" text into
// "section.key" -> value.
func parseInfo(t *testing.T, out string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	section := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		indent := len(l) - len(strings.TrimLeft(l, " "))
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch indent {
		case 0:
			section = k
			if v != "" {
				kv[k] = v
			}
		case 2:
			kv[section+"."+k] = v
		}
	}
	return kv
}

// hostCgroups is what the host runs: v2 (unified), hybrid (v1 with a v2 tree
// at /sys/fs/cgroup/unified) or v1.
func hostCgroups(t *testing.T) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatalf("statfs /sys/fs/cgroup: %v", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2"
	}
	if unix.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "hybrid"
	}
	return "v1"
}

func rangesString(self int, rs []idRange) string {
	parts := []string{fmt.Sprintf("0:%d:1", self)}
	next := 1
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d:%d:%d", next, r.start, r.count))
		next += r.count
	}
	return strings.Join(parts, ",")
}

func TestInfo(t *testing.T) {
	s := useMain(t)
	requireSubIDs(t)
	out := s.mustNook(t, "info").Stdout
	kv := parseInfo(t, out)
	want := map[string]string{
		"idmap.mode":        "subordinate",
		"idmap.uidmap":      rangesString(hostUID, subUIDs),
		"idmap.gidmap":      rangesString(hostGID, subGIDs),
		"storage.driver":    "overlay",
		"storage.graphRoot": s.graphRoot(),
		"storage.runRoot":   s.runRoot(),
		"cgroups.version":   hostCgroups(t),
	}
	for k, v := range want {
		assertEqual(t, "nook info "+k, kv[k], v)
	}
	if src := kv["idmap.source"]; src != "/etc/subuid" && src != "getsubids" {
		t.Errorf("nook info idmap.source = %q, want /etc/subuid or getsubids", src)
	}
	switch kv["storage.rootfsMode"] {
	case "overlay", "fuse-overlayfs":
	default:
		t.Errorf("nook info storage.rootfsMode = %q, want overlay or fuse-overlayfs with the overlay driver", kv["storage.rootfsMode"])
	}
	// Kernel overlay and a probed run root: the engine runs in the pause's namespaces
	// (decisions.md, "The pause process"); the suite sets NOOK_PAUSE_LINGER=300ms.
	if kv["storage.rootfsMode"] == "overlay" {
		assertMatch(t, "nook info idmap.namespace", kv["idmap.namespace"], `^pause process [0-9]+ \(it exits 300ms after its last user: NOOK_PAUSE_LINGER\)$`)
	}
	// The suite's binaries come with nook-idle (test/run-e2e.sh checks it is built).
	assertMatch(t, "nook info monitor.idle", kv["monitor.idle"], `^yes: .*/nook-idle$`)
	backends := strings.Split(kv["network.backends"], ",")
	for i := range backends {
		backends[i] = strings.TrimSpace(backends[i])
	}
	if !contains(backends, "none") || !contains(backends, "host") {
		t.Errorf("nook info network.backends = %q, want none and host in it", kv["network.backends"])
	}
	for _, section := range []string{"idmap:", "storage:", "network:", "cgroups:"} {
		if !strings.Contains("\n"+out, "\n"+section+"\n") {
			t.Errorf("nook info has no line %q", section)
		}
	}
}

func TestRootAndRunrootFlags(t *testing.T) {
	root := filepath.Join(baseDir, "flag-root")
	runroot := filepath.Join(baseDir, "flag-runroot")
	s := newStore(t, "flags", storeOptions{flags: []string{"--root", root, "--runroot", runroot}}, true)
	s.watchDirs = append(s.watchDirs, runroot)
	kv := parseInfo(t, s.mustNook(t, "info").Stdout)
	assertEqual(t, "graphRoot with --root", kv["storage.graphRoot"], root)
	assertEqual(t, "runRoot with --runroot", kv["storage.runRoot"], runroot)
	s.mustNook(t, "import", busyboxTar, "demo")
	if _, err := os.Stat(filepath.Join(s.dataHome, "nook")); err == nil {
		t.Errorf("with --root, nook still wrote to $XDG_DATA_HOME/nook")
	}
	assertEqual(t, "run in a --root store", s.mustNook(t, "run", "--rm", "demo", "echo", "ok").Stdout, "ok\n")
}

// Without XDG_RUNTIME_DIR (as after su), the run root is a private /tmp/nook-UID.
func TestXDGRuntimeDirUnset(t *testing.T) {
	fallback := fmt.Sprintf("/tmp/nook-%d", hostUID)
	if _, err := os.Lstat(fallback); os.IsNotExist(err) {
		t.Cleanup(func() { removeAll(fallback) }) // runs after the leak check
	}
	s := newStore(t, "noxdg", storeOptions{noRuntimeDir: true}, false)
	kv := parseInfo(t, s.mustNook(t, "info").Stdout)
	if rr := kv["storage.runRoot"]; rr != fallback && !strings.HasPrefix(rr, fallback+"/") {
		t.Errorf("runRoot without XDG_RUNTIME_DIR = %q, want %s or below it", rr, fallback)
	}
	assertEqual(t, "run without XDG_RUNTIME_DIR", s.mustNook(t, "run", "--rm", "demo", "echo", "ok").Stdout, "ok\n")
	var st syscall.Stat_t
	if err := syscall.Lstat(fallback, &st); err != nil {
		t.Fatalf("%s: %v", fallback, err)
	}
	assertEqual(t, "type of "+fallback, st.Mode&syscall.S_IFMT, uint32(syscall.S_IFDIR))
	assertEqual(t, "mode of "+fallback, st.Mode&0o7777, uint32(0o700))
	assertEqual(t, "owner of "+fallback, int(st.Uid), hostUID)
}

func TestXDGRuntimeDirNotUsable(t *testing.T) {
	s := useMain(t)
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/", notDir} {
		for _, args := range [][]string{{"images"}, {"run", "--rm", "demo", "true"}} {
			r := s.nookEnv(t, []string{"XDG_RUNTIME_DIR=" + dir}, "", args...)
			assertExit(t, r, 125)
			assertErrorLine(t, r, "XDG_RUNTIME_DIR")
		}
	}
}
