package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// assertOneWarning checks stderr is exactly one "nook: warning: " line that
// mentions each of the words (case-insensitive), and says what to do.
func assertOneWarning(t *testing.T, r result, words ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "nook: warning: ") {
		t.Errorf("nook %s: want exactly one line \"nook: warning: ...\" on stderr, got:\n%s", strings.Join(r.Args, " "), r.Stderr)
		return
	}
	l := strings.ToLower(lines[0])
	for _, w := range words {
		if !strings.Contains(l, strings.ToLower(w)) {
			t.Errorf("warning %q should mention %q", lines[0], w)
		}
	}
	if !strings.Contains(l, "single") {
		t.Errorf("warning %q should say that nook runs with a single-ID mapping", lines[0])
	}
}

// checkSingleID runs a container in a single-ID store: it works, uid 0 is the
// user and nothing else is mapped, and each command warns once.
func checkSingleID(t *testing.T, s *store, words ...string) {
	t.Helper()
	r := s.nook(t, "run", "--rm", "demo", "sh", "-c", "cat /proc/self/uid_map; echo ---; cat /proc/self/gid_map; echo ---; id -u; echo works")
	assertExit(t, r, 0)
	assertOneWarning(t, r, words...)
	parts := strings.Split(r.Stdout, "---\n")
	if len(parts) != 3 {
		t.Fatalf("unexpected output:\n%s", r.Stdout)
	}
	assertEqual(t, "uid_map in single-ID mode", strings.Join(normMap(parts[0]), "\n"), fmt.Sprintf("0 %d 1", hostUID))
	assertEqual(t, "gid_map in single-ID mode", strings.Join(normMap(parts[1]), "\n"), fmt.Sprintf("0 %d 1", hostGID))
	assertEqual(t, "id -u; echo works", parts[2], "0\nworks\n")

	info := s.nook(t, "info")
	assertExit(t, info, 0)
	kv := parseInfo(t, info.Stdout)
	assertEqual(t, "idmap mode in nook info", kv["idmap.mode"], "single-id")
	assertEqual(t, "idmap uidmap in nook info", kv["idmap.uidmap"], fmt.Sprintf("0:%d:1", hostUID))
	assertEqual(t, "idmap gidmap in nook info", kv["idmap.gidmap"], fmt.Sprintf("0:%d:1", hostGID))
}

func TestSingleIDWithoutSubordinateRange(t *testing.T) {
	empty := filepath.Join(baseDir, "empty-subid")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, "nosubid", storeOptions{env: []string{"NOOK_SUBUID_FILE=" + empty, "NOOK_SUBGID_FILE=" + empty}}, true)
	r := s.nook(t, "import", busyboxTar, "demo")
	assertExit(t, r, 0)
	assertOneWarning(t, r, userName)
	checkSingleID(t, s, userName)
}

// NOOK_SUBUID_FILE and NOOK_SUBGID_FILE replace /etc/subuid and /etc/subgid:
// a file granting half of the user's range gives a mapping of that half.
func TestSubIDFileOverride(t *testing.T) {
	requireSubIDs(t)
	half := func(rs []idRange) idRange { return idRange{rs[0].start, rs[0].count / 2} }
	u, g := half(subUIDs), half(subGIDs)
	dir := t.TempDir()
	uf, gf := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	// By name in one file, by numeric ID in the other, with a comment and another user.
	if err := os.WriteFile(uf, []byte(fmt.Sprintf("# test ranges\nsomeoneelse:300000:65536\n%s:%d:%d\n", userName, u.start, u.count)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gf, []byte(fmt.Sprintf("%d:%d:%d\n", hostUID, g.start, g.count)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, "subidfile", storeOptions{env: []string{"NOOK_SUBUID_FILE=" + uf, "NOOK_SUBGID_FILE=" + gf}}, false)
	kv := parseInfo(t, s.mustNook(t, "info").Stdout)
	assertEqual(t, "idmap mode", kv["idmap.mode"], "subordinate")
	assertEqual(t, "idmap source", kv["idmap.source"], uf)
	assertEqual(t, "idmap uidmap", kv["idmap.uidmap"], rangesString(hostUID, []idRange{u}))
	assertEqual(t, "idmap gidmap", kv["idmap.gidmap"], rangesString(hostGID, []idRange{g}))
	out := s.sh(t, "cat /proc/self/uid_map; echo ---; cat /proc/self/gid_map")
	parts := strings.Split(out, "---\n")
	if len(parts) != 2 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	assertEqual(t, "uid_map", strings.Join(normMap(parts[0]), "\n"), strings.Join(wantMap(t, hostUID, []idRange{u}), "\n"))
	assertEqual(t, "gid_map", strings.Join(normMap(parts[1]), "\n"), strings.Join(wantMap(t, hostGID, []idRange{g}), "\n"))
}

func TestSingleIDWithoutNewuidmap(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "nohelper", storeOptions{env: []string{"NOOK_NEWUIDMAP=/nonexistent/newuidmap", "NOOK_NEWGIDMAP=/nonexistent/newgidmap"}}, true)
	r := s.nook(t, "import", busyboxTar, "demo")
	assertExit(t, r, 0)
	assertOneWarning(t, r, "newuidmap")
	checkSingleID(t, s, "newuidmap")
}

func TestSingleIDNewuidmapNotSetuid(t *testing.T) {
	requireSubIDs(t)
	dir := t.TempDir()
	var env []string
	for _, h := range []string{"newuidmap", "newgidmap"} {
		src, err := exec.LookPath(h)
		if err != nil {
			t.Fatalf("%s is not installed (apt-get install uidmap): %v", h, err)
		}
		dst := filepath.Join(dir, h)
		if err := copyFile(src, dst, 0o755); err != nil {
			t.Fatal(err)
		}
		env = append(env, "NOOK_"+strings.ToUpper(h)+"="+dst)
	}
	s := newStore(t, "nosetuid", storeOptions{env: env}, true)
	r := s.nook(t, "import", busyboxTar, "demo")
	assertExit(t, r, 0)
	assertOneWarning(t, r, "newuidmap")
	checkSingleID(t, s, "newuidmap")
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
