package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func testRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/passwd", `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
nohome:x:1001:1001::::
+nis
`)
	write("etc/group", `root:x:0:
daemon:x:1:
alice:x:1000:
audio:x:29:alice,bob
video:x:44:bob, alice
staff:x:50:
`)
	return root
}

func TestResolveUser(t *testing.T) {
	root := testRootfs(t)
	tests := []struct {
		user      string
		uid, gid  uint32
		groups    []uint32
		home      string
		wantError string
	}{
		{"", 0, 0, nil, "/root", ""},
		{"0", 0, 0, nil, "/root", ""},
		{"root", 0, 0, nil, "/root", ""},
		{"alice", 1000, 1000, []uint32{29, 44}, "/home/alice", ""},
		{"1000", 1000, 1000, []uint32{29, 44}, "/home/alice", ""},
		{"alice:staff", 1000, 50, nil, "/home/alice", ""},
		{"alice:7", 1000, 7, nil, "/home/alice", ""},
		{"1000:1000", 1000, 1000, nil, "/home/alice", ""},
		{"4242", 4242, 0, nil, "/", ""},
		{"4242:4343", 4242, 4343, nil, "/", ""},
		{"nohome", 1001, 1001, nil, "/", ""},
		{"bob", 0, 0, nil, "", "unable to find user bob: no matching entries in passwd file"},
		{"alice:nogroup", 0, 0, nil, "", "unable to find group nogroup: no matching entries in group file"},
		{"alice:", 0, 0, nil, "", "empty group"},
		{"99999999999", 0, 0, nil, "", "out of range"},
	}
	for _, tt := range tests {
		uid, gid, groups, home, err := ResolveUser(root, tt.user)
		if tt.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantError) {
				t.Errorf("ResolveUser(%q) error = %v, want %q", tt.user, err, tt.wantError)
			}
			continue
		}
		if err != nil {
			t.Errorf("ResolveUser(%q): %v", tt.user, err)
			continue
		}
		if uid != tt.uid || gid != tt.gid || !slices.Equal(groups, tt.groups) || home != tt.home {
			t.Errorf("ResolveUser(%q) = %d, %d, %v, %q; want %d, %d, %v, %q",
				tt.user, uid, gid, groups, home, tt.uid, tt.gid, tt.groups, tt.home)
		}
	}
}

func TestResolveUserNoPasswd(t *testing.T) {
	root := t.TempDir()
	if uid, gid, groups, home, err := ResolveUser(root, ""); err != nil || uid != 0 || gid != 0 || groups != nil || home != "/" {
		t.Errorf("ResolveUser without /etc/passwd = %d %d %v %q %v", uid, gid, groups, home, err)
	}
	if _, _, _, _, err := ResolveUser(root, "alice"); err == nil {
		t.Errorf("a name resolved without /etc/passwd")
	}
}

func TestResolveUserSymlinkStaysInRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// On the host this would be the host's passwd, which knows "root".
	if err := os.Symlink("/../../../../../../etc/passwd", filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := ResolveUser(root, "root"); err == nil {
		t.Errorf("/etc/passwd was read through a symlink out of the rootfs")
	}
}

func hasMount(s *specs.Spec, dest, typ string, opts ...string) bool {
	for _, m := range s.Mounts {
		if m.Destination == dest && m.Type == typ {
			for _, o := range opts {
				if !slices.Contains(m.Options, o) {
					return false
				}
			}
			return true
		}
	}
	return false
}

func env(s *specs.Spec, key string) (string, bool) {
	for _, kv := range s.Process.Env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

func nsTypes(s *specs.Spec) map[specs.LinuxNamespaceType]string {
	m := map[specs.LinuxNamespaceType]string{}
	for _, ns := range s.Linux.Namespaces {
		m[ns.Type] = ns.Path
	}
	return m
}

func TestNew(t *testing.T) {
	root := testRootfs(t)
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	base := Options{Args: []string{"sh"}, Rootfs: root, Hostname: "abc123"}
	tests := []struct {
		name  string
		opts  func(o *Options)
		check func(t *testing.T, s *specs.Spec)
	}{
		{"defaults", func(o *Options) {}, func(t *testing.T, s *specs.Spec) {
			if !s.Process.NoNewPrivileges || s.Process.Cwd != "/" || s.Hostname != "abc123" || s.Root.Path != root || s.Root.Readonly {
				t.Errorf("process/root: %+v %+v", s.Process, s.Root)
			}
			if v, _ := env(s, "PATH"); v != DefaultPath {
				t.Errorf("PATH=%q", v)
			}
			if v, _ := env(s, "HOME"); v != "/root" {
				t.Errorf("HOME=%q", v)
			}
			if v, _ := env(s, "HOSTNAME"); v != "abc123" {
				t.Errorf("HOSTNAME=%q", v)
			}
			if _, ok := env(s, "TERM"); ok {
				t.Errorf("TERM set without a terminal")
			}
			c := s.Process.Capabilities
			want := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
				"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
			if !slices.Equal(c.Bounding, want) || !slices.Equal(c.Effective, want) || !slices.Equal(c.Permitted, want) ||
				len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
				t.Errorf("capabilities %+v", c)
			}
			ns := nsTypes(s)
			for _, typ := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.NetworkNamespace, specs.CgroupNamespace} {
				if p, ok := ns[typ]; !ok || p != "" {
					t.Errorf("namespace %s: present %v, path %q", typ, ok, p)
				}
			}
			if _, ok := ns[specs.UserNamespace]; ok || len(ns) != 6 {
				t.Errorf("namespaces %v", s.Linux.Namespaces)
			}
			if len(s.Process.Rlimits) != 1 || s.Process.Rlimits[0].Type != "RLIMIT_NOFILE" ||
				s.Process.Rlimits[0].Hard != nofile.Max || s.Process.Rlimits[0].Soft != min(nofile.Max, MaxNofile) {
				t.Errorf("rlimits %+v, host hard %d", s.Process.Rlimits, nofile.Max)
			}
			if !slices.Equal(s.Linux.MaskedPaths, []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}) {
				t.Errorf("masked paths %v", s.Linux.MaskedPaths)
			}
			if !slices.Equal(s.Linux.ReadonlyPaths, []string{"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
				t.Errorf("readonly paths %v", s.Linux.ReadonlyPaths)
			}
			var dests []string
			for _, m := range s.Mounts {
				dests = append(dests, m.Destination)
			}
			if !slices.Equal(dests, []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
				"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}) {
				t.Errorf("mounts %v", dests)
			}
			if !hasMount(s, "/sys", "sysfs", "ro", "nosuid", "noexec", "nodev") ||
				!hasMount(s, "/dev", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k") ||
				!hasMount(s, "/dev/pts", "devpts", "newinstance", "ptmxmode=0666", "mode=0620") ||
				!hasMount(s, "/dev/shm", "tmpfs", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k") ||
				!hasMount(s, "/dev/mqueue", "mqueue") || !hasMount(s, "/proc", "proc") ||
				!hasMount(s, "/dev/null", "bind", "bind") {
				t.Errorf("mounts %+v", s.Mounts)
			}
			for _, m := range s.Mounts {
				for _, o := range m.Options {
					if strings.HasPrefix(o, "gid=") || o == "nodev" && strings.HasPrefix(m.Source, "/dev/") {
						t.Errorf("mount %s has %q, impossible rootless", m.Destination, o)
					}
				}
			}
			if s.Linux.Resources != nil || len(s.Linux.UIDMappings) != 0 {
				t.Errorf("unexpected resources/mappings")
			}
			// Docker's default seccomp profile: an allowlist answering EPERM.
			if sc := s.Linux.Seccomp; sc == nil || sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) < 10 {
				t.Errorf("seccomp: want Docker's default profile, got %+v", sc)
			}
		}},
		{"user and env", func(o *Options) {
			o.User = "alice"
			o.Terminal = true
			o.Cwd = "/work/"
			o.Env = []string{"PATH=/custom", "FOO=bar", "HOSTNAME=mine"}
		}, func(t *testing.T, s *specs.Spec) {
			u := s.Process.User
			if u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.AdditionalGids, []uint32{29, 44}) {
				t.Errorf("user %+v", u)
			}
			for k, want := range map[string]string{"PATH": "/custom", "HOME": "/home/alice", "TERM": "xterm", "FOO": "bar", "HOSTNAME": "mine"} {
				if v, _ := env(s, k); v != want {
					t.Errorf("%s=%q, want %q (env %v)", k, v, want, s.Process.Env)
				}
			}
			if len(s.Process.Env) != 5 || !s.Process.Terminal || s.Process.Cwd != "/work" {
				t.Errorf("env %v terminal %v cwd %q", s.Process.Env, s.Process.Terminal, s.Process.Cwd)
			}
		}},
		{"HOME kept", func(o *Options) { o.Env = []string{"HOME=/x"} }, func(t *testing.T, s *specs.Spec) {
			if v, _ := env(s, "HOME"); v != "/x" {
				t.Errorf("HOME=%q", v)
			}
		}},
		{"network host", func(o *Options) { o.NetworkNS = "host" }, func(t *testing.T, s *specs.Spec) {
			if _, ok := nsTypes(s)[specs.NetworkNamespace]; ok {
				t.Errorf("network namespace with --network host")
			}
			if !hasMount(s, "/sys", "bind", "rbind", "rro", "nosuid", "noexec", "nodev") {
				t.Errorf("/sys with host network: %+v", s.Mounts)
			}
		}},
		{"network path", func(o *Options) { o.NetworkNS = "/run/netns/x" }, func(t *testing.T, s *specs.Spec) {
			if p := nsTypes(s)[specs.NetworkNamespace]; p != "/run/netns/x" {
				t.Errorf("network namespace path %q", p)
			}
		}},
		{"etc files and read-only", func(o *Options) {
			o.HostsFile, o.HostnameFile, o.ResolvConf = "/h/hosts", "/h/hostname", "/h/resolv.conf"
			o.ReadOnly = true
		}, func(t *testing.T, s *specs.Spec) {
			if !s.Root.Readonly {
				t.Errorf("root not read-only")
			}
			for dst, src := range map[string]string{"/etc/hosts": "/h/hosts", "/etc/hostname": "/h/hostname", "/etc/resolv.conf": "/h/resolv.conf"} {
				found := false
				for _, m := range s.Mounts {
					if m.Destination == dst && m.Source == src && m.Type == "bind" && slices.Contains(m.Options, "ro") {
						found = true
					}
				}
				if !found {
					t.Errorf("no read-only bind of %s on %s: %+v", src, dst, s.Mounts)
				}
			}
		}},
		{"cap add and drop", func(o *Options) {
			o.CapAdd = []string{"net_admin", "CAP_SYS_PTRACE", "CHOWN"}
			o.CapDrop = []string{"MKNOD", "chown", "CAP_NET_RAW"}
		}, func(t *testing.T, s *specs.Spec) {
			b := s.Process.Capabilities.Bounding
			if slices.Contains(b, "CAP_MKNOD") || slices.Contains(b, "CAP_NET_RAW") ||
				!slices.Contains(b, "CAP_NET_ADMIN") || !slices.Contains(b, "CAP_SYS_PTRACE") || !slices.Contains(b, "CAP_CHOWN") {
				t.Errorf("bounding %v", b)
			}
		}},
		{"cap drop all", func(o *Options) { o.CapDrop = []string{"ALL"}; o.CapAdd = []string{"KILL"} }, func(t *testing.T, s *specs.Spec) {
			if b := s.Process.Capabilities.Bounding; !slices.Equal(b, []string{"CAP_KILL"}) {
				t.Errorf("bounding %v", b)
			}
		}},
		{"cap add all", func(o *Options) { o.CapAdd = []string{"all"}; o.CapDrop = []string{"SYS_ADMIN"} }, func(t *testing.T, s *specs.Spec) {
			if b := s.Process.Capabilities.Bounding; len(b) != 40 || slices.Contains(b, "CAP_SYS_ADMIN") {
				t.Errorf("bounding %v", b)
			}
		}},
		{"privileged", func(o *Options) { o.Privileged = true }, func(t *testing.T, s *specs.Spec) {
			if len(s.Process.Capabilities.Bounding) != 41 || len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
				t.Errorf("privileged: %+v %v %v", s.Process.Capabilities, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
			}
			if hasMount(s, "/sys", "sysfs", "ro") {
				t.Errorf("/sys read-only when privileged")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.opts(&o)
			s, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestNewErrors(t *testing.T) {
	root := testRootfs(t)
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no args", Options{Rootfs: root}, "no command"},
		{"no rootfs", Options{Args: []string{"sh"}}, "no root filesystem"},
		{"relative cwd", Options{Args: []string{"sh"}, Rootfs: root, Cwd: "work"}, "absolute path"},
		{"unknown user", Options{Args: []string{"sh"}, Rootfs: root, User: "mallory"}, "unable to find user mallory"},
		{"bad network", Options{Args: []string{"sh"}, Rootfs: root, NetworkNS: "bridge"}, "network"},
		{"bad cap", Options{Args: []string{"sh"}, Rootfs: root, CapAdd: []string{"FLY"}}, "unknown capability"},
	}
	for _, tt := range tests {
		_, err := New(tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestNofileLimits(t *testing.T) {
	tests := []struct{ host, hard, soft uint64 }{
		{20000, 20000, 20000},
		{1048576, 1048576, 1048576},
		{4194304, 4194304, 1048576},
		{unix.RLIM_INFINITY, unix.RLIM_INFINITY, 1048576},
	}
	for _, tt := range tests {
		if hard, soft := nofileLimits(tt.host); hard != tt.hard || soft != tt.soft {
			t.Errorf("nofileLimits(%d) = %d, %d; want %d, %d", tt.host, hard, soft, tt.hard, tt.soft)
		}
	}
}

// --init: nook-init at InitPath runs the command, bind-mounted read-only over nook's /dev.
func TestNewInit(t *testing.T) {
	root := t.TempDir()
	s, err := New(Options{Args: []string{"sleep", "1"}, Rootfs: root, Init: "/opt/nook/bin/nook-init"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Process.Args, " "); got != "/dev/init -- sleep 1" {
		t.Errorf("args with Init: %q, want \"/dev/init -- sleep 1\"", got)
	}
	var found, afterDev bool
	for _, m := range s.Mounts {
		if m.Destination == "/dev" {
			afterDev = true
		}
		if m.Destination == InitPath {
			found = true
			if !afterDev || m.Source != "/opt/nook/bin/nook-init" || !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "bind") {
				t.Errorf("the init's mount: %+v (after /dev: %v), want a read-only bind of the host's nook-init after /dev", m, afterDev)
			}
		}
	}
	if !found {
		t.Errorf("no mount at %s in %+v", InitPath, s.Mounts)
	}
	s, err = New(Options{Args: []string{"sleep", "1"}, Rootfs: root})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Process.Args, " "); got != "sleep 1" {
		t.Errorf("args without Init: %q", got)
	}
	for _, m := range s.Mounts {
		if m.Destination == InitPath {
			t.Errorf("a mount at %s without Init", InitPath)
		}
	}
}
