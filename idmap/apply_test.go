package idmap

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// startInUserNS starts /bin/sleep in a new user namespace with no maps yet, as userns' parent
// side does, and skips the test where the kernel forbids that.
func startInUserNS(t *testing.T) int {
	t.Helper()
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		t.Skip("user namespaces are disabled: /proc/sys/user/max_user_namespaces is 0")
	}
	cmd := exec.Command("/bin/sleep", "5")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	if err := cmd.Start(); err != nil {
		// EPERM: unprivileged_userns_clone=0 or an AppArmor/SELinux rule; ENOSPC: the count
		// limit; EINVAL: a kernel built without CONFIG_USER_NS.
		for _, e := range []error{syscall.EPERM, syscall.EACCES, syscall.ENOSPC, syscall.EINVAL, syscall.EUSERS} {
			if errors.Is(err, e) {
				t.Skipf("the kernel refuses a new user namespace here: %v", err)
			}
		}
		t.Fatalf("start a child in a new user namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

// readProcMap reads /proc/PID/uid_map or gid_map back as mappings.
func readProcMap(t *testing.T, pid int, file string) []Mapping {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var m []Mapping
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			t.Fatalf("%s line %q", file, line)
		}
		var n [3]uint32
		for i := range f {
			v, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				t.Fatalf("%s line %q: %v", file, line, err)
			}
			n[i] = uint32(v)
		}
		m = append(m, Mapping{n[0], n[1], n[2]})
	}
	return m
}

func TestApplySingleID(t *testing.T) {
	pid := startInUserNS(t)
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	p := &Plan{
		Mode:   ModeSingleID,
		UIDMap: []Mapping{{0, uid, 1}},
		GIDMap: []Mapping{{0, gid, 1}},
	}
	if err := p.Apply(pid); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := readProcMap(t, pid, "uid_map"); !reflect.DeepEqual(got, p.UIDMap) {
		t.Errorf("uid_map = %v, want %v", got, p.UIDMap)
	}
	if got := readProcMap(t, pid, "gid_map"); !reflect.DeepEqual(got, p.GIDMap) {
		t.Errorf("gid_map = %v, want %v", got, p.GIDMap)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/setgroups")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "deny" {
		t.Errorf("setgroups = %q, want deny", got)
	}
	// The kernel takes a map once; a second Apply must report that, not pass silently.
	if err := p.Apply(pid); err == nil {
		t.Error("second Apply succeeded")
	}
}

// TestApplySubordinateReal runs the real helpers when this user has a subordinate mapping.
func TestApplySubordinateReal(t *testing.T) {
	p, err := Resolve()
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if p.Mode != ModeSubordinate {
		t.Skipf("this user gets no subordinate mapping here: %s", p.Warning)
	}
	pid := startInUserNS(t)
	if err := p.Apply(pid); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := readProcMap(t, pid, "uid_map"); !reflect.DeepEqual(got, p.UIDMap) {
		t.Errorf("uid_map = %v, want %v", got, p.UIDMap)
	}
	if got := readProcMap(t, pid, "gid_map"); !reflect.DeepEqual(got, p.GIDMap) {
		t.Errorf("gid_map = %v, want %v", got, p.GIDMap)
	}
}

func TestApplySubordinateHelpers(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to run fake helpers")
	}
	dir := t.TempDir()
	logU, logG := filepath.Join(dir, "u.log"), filepath.Join(dir, "g.log")
	okU := writeFile(t, filepath.Join(dir, "ok-newuidmap"), "#!/bin/sh\necho \"$*\" > '"+logU+"'\n", 0o755)
	okG := writeFile(t, filepath.Join(dir, "ok-newgidmap"), "#!/bin/sh\necho \"$*\" > '"+logG+"'\n", 0o755)
	fail := writeFile(t, filepath.Join(dir, "bad-newuidmap"),
		"#!/bin/sh\necho >&2\necho 'newuidmap: uid range [1-65537) -> [100000-165536) not allowed' >&2\necho '  second line' >&2\nexit 1\n", 0o755)
	uidMap := []Mapping{{0, 1001, 1}, {1, 100000, 65536}}
	gidMap := []Mapping{{0, 1002, 1}, {1, 200000, 1000}}

	t.Run("arguments", func(t *testing.T) {
		p := &Plan{Mode: ModeSubordinate, UIDMap: uidMap, GIDMap: gidMap, NewUIDMap: okU, NewGIDMap: okG}
		if err := p.Apply(4242); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		for _, c := range []struct{ log, want string }{
			{logU, "4242 0 1001 1 1 100000 65536"},
			{logG, "4242 0 1002 1 1 200000 1000"},
		} {
			b, err := os.ReadFile(c.log)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(b)); got != c.want {
				t.Errorf("helper got %q, want %q", got, c.want)
			}
		}
	})

	t.Run("failure carries stderr on one line", func(t *testing.T) {
		p := &Plan{Mode: ModeSubordinate, UIDMap: uidMap, GIDMap: gidMap, NewUIDMap: fail, NewGIDMap: okG}
		err := p.Apply(4242)
		var he *HelperError
		if !errors.As(err, &he) || he.Helper != fail {
			t.Fatalf("Apply error = %v, want a HelperError for %s", err, fail)
		}
		msg := err.Error()
		if !strings.Contains(msg, "[1-65537) -> [100000-165536) not allowed; second line") || strings.Contains(msg, "\n") {
			t.Errorf("error is not the helper's stderr on one line: %q", msg)
		}
	})

	t.Run("both fail", func(t *testing.T) {
		p := &Plan{Mode: ModeSubordinate, UIDMap: uidMap, GIDMap: gidMap, NewUIDMap: fail, NewGIDMap: filepath.Join(dir, "missing")}
		err := p.Apply(4242)
		if err == nil || strings.Contains(err.Error(), "\n") ||
			!strings.Contains(err.Error(), fail) || !strings.Contains(err.Error(), filepath.Join(dir, "missing")) {
			t.Errorf("Apply error = %q, want both helpers named on one line", err)
		}
	})

	t.Run("bad plans", func(t *testing.T) {
		for _, p := range []*Plan{
			{Mode: ModeSubordinate, UIDMap: uidMap, GIDMap: gidMap},
			{Mode: "other", UIDMap: uidMap, GIDMap: gidMap},
			{Mode: ModeSingleID},
		} {
			if err := p.Apply(4242); err == nil {
				t.Errorf("Apply(%+v) succeeded", p)
			}
		}
		if err := (&Plan{Mode: ModeSubordinate, UIDMap: uidMap, GIDMap: gidMap, NewUIDMap: okU, NewGIDMap: okG}).Apply(0); err == nil {
			t.Error("Apply(0) succeeded")
		}
	})
}
