package spec

import (
	"os"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nook-containers/nook/runtime"
)

func newTestSpec(t *testing.T, o Options) *specs.Spec {
	t.Helper()
	o.Rootfs = t.TempDir()
	if err := os.MkdirAll(o.Rootfs+"/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	o.Args = []string{"sh"}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func allows(sc *specs.LinuxSeccomp, name string) bool {
	for _, c := range sc.Syscalls {
		if c.Action == specs.ActAllow && len(c.Args) == 0 && slices.Contains(c.Names, name) {
			return true
		}
	}
	return false
}

func TestSeccompSelection(t *testing.T) {
	// The default profile follows the capabilities: mount is allowed only
	// with CAP_SYS_ADMIN.
	if s := newTestSpec(t, Options{}); allows(s.Linux.Seccomp, "mount") || !allows(s.Linux.Seccomp, "read") {
		t.Errorf("default profile: mount allowed or read denied")
	}
	if s := newTestSpec(t, Options{CapAdd: []string{"SYS_ADMIN"}}); !allows(s.Linux.Seccomp, "mount") {
		t.Errorf("--cap-add SYS_ADMIN: mount should be allowed by the profile")
	}
	if s := newTestSpec(t, Options{Seccomp: SeccompUnconfined}); s.Linux.Seccomp != nil {
		t.Errorf("unconfined: got a profile")
	}
	if s := newTestSpec(t, Options{Privileged: true}); s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 {
		t.Errorf("privileged: seccomp or masked paths left")
	}
	custom := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`
	s := newTestSpec(t, Options{Seccomp: custom})
	if sc := s.Linux.Seccomp; sc == nil || sc.DefaultAction != specs.ActAllow || len(sc.Syscalls) != 1 || *sc.Syscalls[0].ErrnoRet != 13 {
		t.Errorf("custom profile: %+v", sc)
	}
	if _, err := runtime.CompileSeccomp(s.Linux.Seccomp); err != nil {
		t.Errorf("custom profile does not compile: %v", err)
	}
	if _, err := New(Options{Args: []string{"sh"}, Rootfs: t.TempDir(), Seccomp: "{not json"}); err == nil {
		t.Errorf("a broken profile was accepted")
	}
}

func TestNoNewPrivilegesAndRlimits(t *testing.T) {
	f := false
	if s := newTestSpec(t, Options{NoNewPrivileges: &f}); s.Process.NoNewPrivileges {
		t.Errorf("no-new-privileges=false ignored")
	}
	if s := newTestSpec(t, Options{}); !s.Process.NoNewPrivileges {
		t.Errorf("no_new_privs should be the default")
	}
	s := newTestSpec(t, Options{Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}, {Type: "RLIMIT_NPROC", Soft: 5, Hard: 5}}})
	if !slices.Equal(s.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}, {Type: "RLIMIT_NPROC", Soft: 5, Hard: 5}}) {
		t.Errorf("rlimits %+v", s.Process.Rlimits)
	}
}

func TestUserMountsOrder(t *testing.T) {
	s := newTestSpec(t, Options{Mounts: []specs.Mount{
		{Destination: "/a/b/c", Type: "bind", Source: "/x"},
		{Destination: "/a", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/z", Type: "bind", Source: "/y"},
	}})
	var dests []string
	for _, m := range s.Mounts[len(s.Mounts)-3:] {
		dests = append(dests, m.Destination)
	}
	if !slices.Equal(dests, []string{"/a", "/z", "/a/b/c"}) {
		t.Errorf("user mounts in order %v", dests)
	}
}
