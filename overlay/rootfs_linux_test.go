package overlay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/runtime"
	"github.com/nook-containers/nook/spec"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		opts []string
		want mountOpts
	}{
		{nil, mountOpts{}},
		{[]string{"nosuid", "noexec", "nodev"}, mountOpts{flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV}},
		{[]string{"ro", "rw"}, mountOpts{}},
		{[]string{"rbind", "ro", "rprivate"}, mountOpts{flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, propagation: []uintptr{unix.MS_PRIVATE | unix.MS_REC}}},
		{[]string{"nosuid", "strictatime", "mode=755", "size=65536k"}, mountOpts{flags: unix.MS_NOSUID | unix.MS_STRICTATIME, data: "mode=755,size=65536k"}},
		{[]string{"newinstance", "ptmxmode=0666", "mode=0620"}, mountOpts{data: "newinstance,ptmxmode=0666,mode=0620"}},
		{[]string{"rbind", "rro"}, mountOpts{flags: unix.MS_BIND | unix.MS_REC, recursiveRO: true}},
	}
	for _, tt := range tests {
		got := parseMountOptions(tt.opts)
		if got.flags != tt.want.flags || got.data != tt.want.data || got.recursiveRO != tt.want.recursiveRO || !slices.Equal(got.propagation, tt.want.propagation) {
			t.Errorf("parseMountOptions(%q) = %+v, want %+v", tt.opts, got, tt.want)
		}
	}
}

func TestOpenInRootStaysInside(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	// Links that would leave root if followed on the host.
	must(t, os.Symlink("/../../../../"+outside, filepath.Join(root, "abs")))
	must(t, os.Symlink("../../../../../../"+outside, filepath.Join(root, "rel")))
	must(t, os.Symlink("/run/stub.conf", filepath.Join(root, "dangling")))
	must(t, os.Mkdir(filepath.Join(root, "etc"), 0o755))
	must(t, os.Symlink("../run/resolv/stub.conf", filepath.Join(root, "etc", "resolv.conf")))
	rootf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	must(t, err)
	defer rootf.Close()

	tests := []struct {
		path    string
		kind    mkKind
		created string // under root
		dir     bool
	}{
		{"abs/a/b", mkDir, outside + "/a/b", true},
		{"/rel/c", mkFile, outside + "/c", false},
		{"/dangling", mkFile, "/run/stub.conf", false},
		{"/etc/resolv.conf", mkFile, "/run/resolv/stub.conf", false},
		{"/../../x/./y/", mkDir, "/x/y", true},
	}
	for _, tt := range tests {
		f, err := openInRoot(rootf, tt.path, tt.kind, false)
		if err != nil {
			t.Errorf("openInRoot(%q): %v", tt.path, err)
			continue
		}
		f.Close()
		fi, err := os.Lstat(filepath.Join(root, tt.created))
		if err != nil {
			t.Errorf("openInRoot(%q): %s not created in root: %v", tt.path, tt.created, err)
			continue
		}
		if fi.IsDir() != tt.dir {
			t.Errorf("openInRoot(%q): %s is dir %v, want %v", tt.path, tt.created, fi.IsDir(), tt.dir)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("files were created outside the root: %v", ents)
	}
	if _, err := openInRoot(rootf, "/abs/proc", mkDir, true); err == nil {
		t.Errorf("a path through a symlink was accepted for procfs")
	}
	if _, err := openInRoot(rootf, "/missing", mkNone, false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("openInRoot(missing, mkNone) = %v, want not exist", err)
	}
	if _, err := openInRoot(rootf, "/x/y", mkFile, false); !errors.Is(err, unix.EISDIR) {
		t.Errorf("a file target over a directory = %v, want EISDIR", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The namespace test re-executes this test binary as the container init:
// a user namespace mapping 0 to the caller (so it runs as root and as an
// unprivileged user alike) and new mount, PID, UTS, IPC, cgroup and
// (unless "host") network namespaces. It is a helper process rather than a
// TestMain so that it does not take TestMain from the rest of the package.
const (
	childModeEnv   = "NOOK_ROOTFS_TEST_MODE"
	childRootfsEnv = "NOOK_ROOTFS_TEST_ROOTFS"
	childHostsEnv  = "NOOK_ROOTFS_TEST_HOSTS"
)

func TestSetupRootfsInNamespaces(t *testing.T) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		// os.Exit(0) inside a test is reported as a failure by the testing
		// package: return normally on success.
		if code := rootfsChild(mode); code != 0 {
			os.Exit(code)
		}
		return
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("skipped: needs /bin/busybox (apt-get install busybox-static): %v", err)
	}
	const all = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP
	tests := []struct {
		mode     string
		flags    uintptr
		wantCode int
		wantOut  []string
	}{
		{"none", all | unix.CLONE_NEWNET, 0, []string{
			"CapEff:\t00000000a80425fb", "CapBnd:\t00000000a80425fb", "CapPrm:\t00000000a80425fb",
			"CapInh:\t0000000000000000", "CapAmb:\t0000000000000000", "NoNewPrivs:\t1",
			"hostname=nooktest", "pid=1", "uid=0", "nofile=", "cwd=/work", "not a tty",
		}},
		{"host", all, 0, nil},
		{"readonly", all | unix.CLONE_NEWNET, 0, nil},
		{"console", all | unix.CLONE_NEWNET, 0, nil},
		{"user", all | unix.CLONE_NEWNET, 0, []string{
			"uid=1000 gid=1000 groups=1000", "CapEff:\t0000000000000000", "CapBnd:\t00000000a80425fb", "NoNewPrivs:\t1",
		}},
		{"notfound", all | unix.CLONE_NEWNET, 127, []string{`exec: "nosuchcmd": executable file not found in $PATH`}},
		{"isdir", all | unix.CLONE_NEWNET, 126, []string{`exec: "/bin": is a directory`}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			uids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
			gids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
			if tt.mode == "user" {
				// Mapping a second ID needs newuidmap or, as here, host root.
				if os.Getuid() != 0 {
					t.Skip("skipped: mapping uid 1000 in the container needs root on the host")
				}
				uids = append(uids, syscall.SysProcIDMap{ContainerID: 1000, HostID: 231000, Size: 1})
				gids = append(gids, syscall.SysProcIDMap{ContainerID: 1000, HostID: 231000, Size: 1})
			}
			dir := t.TempDir()
			rootfs := filepath.Join(dir, "rootfs")
			must(t, os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755))
			copyFile(t, "/bin/busybox", filepath.Join(rootfs, "bin", "busybox"), 0o755)
			// /etc/hosts must land in the rootfs's /host-etc, not the host's.
			must(t, os.Symlink("/../../../../host-etc", filepath.Join(rootfs, "etc")))
			hosts := filepath.Join(dir, "hosts")
			must(t, os.WriteFile(hosts, []byte("127.0.0.1 localhost nooktest\n"), 0o644))

			cmd := exec.Command("/proc/self/exe", "-test.run=^TestSetupRootfsInNamespaces$")
			cmd.Env = append(os.Environ(), childModeEnv+"="+tt.mode, childRootfsEnv+"="+rootfs, childHostsEnv+"="+hosts)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Cloneflags:  tt.flags,
				UidMappings: uids,
				GidMappings: gids,
				// Allowed for root only; otherwise setgroups says "deny".
				GidMappingsEnableSetgroups: os.Getuid() == 0,
				Pdeathsig:                  syscall.SIGKILL,
			}
			if err := cmd.Start(); err != nil {
				if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSPC) {
					t.Skipf("skipped: this host does not allow user namespaces: %v", err)
				}
				t.Fatal(err)
			}
			err := cmd.Wait()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, tt.wantCode, out.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q; output:\n%s", w, out.String())
				}
			}
		})
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	must(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	must(t, err)
	_, err = io.Copy(out, in)
	must(t, err)
	must(t, out.Close())
}

// rootfsChild is the container init of TestSetupRootfsInNamespaces. It
// returns the exit code; on success the modes that exec never return.
func rootfsChild(mode string) int {
	failed := false
	report := os.Stderr
	fail := func(format string, args ...any) {
		failed = true
		fmt.Fprintf(report, "FAIL: "+format+"\n", args...)
	}
	rootfs := os.Getenv(childRootfsEnv)
	// The caller of SetupRootfs has the rootfs mounted; a bind stands in.
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		fail("bind rootfs: %v", err)
		return 1
	}
	o := spec.Options{
		Args:      []string{"/bin/busybox", "true"},
		Rootfs:    rootfs,
		Hostname:  "nooktest",
		NetworkNS: "none",
		Cwd:       "/work",
		HostsFile: os.Getenv(childHostsEnv),
	}
	switch mode {
	case "none":
		o.Args = []string{"/bin/busybox", "sh", "-c", `B=/bin/busybox
$B grep -E '^(Cap|NoNewPrivs)' /proc/self/status
echo hostname=$($B hostname) pid=$$ uid=$($B id -u) nofile=$(ulimit -n) cwd=$PWD
$B tty || true`}
	case "host":
		o.NetworkNS = "host"
	case "readonly":
		o.ReadOnly = true
		o.Cwd = "/"
	case "console":
		o.Terminal = true
	case "user":
		o.User = "1000:1000"
		o.Args = []string{"/bin/busybox", "sh", "-c", `B=/bin/busybox
$B grep -E '^(Cap|NoNewPrivs)' /proc/self/status
echo uid=$($B id -u) gid=$($B id -g) groups=$($B id -G)`}
	case "notfound":
		o.Args = []string{"nosuchcmd"}
	case "isdir":
		o.Args = []string{"/bin"}
	}
	s, err := spec.New(o)
	if err != nil {
		fail("spec.New: %v", err)
		return 1
	}
	if err := SetupRootfs(s); err != nil {
		fail("SetupRootfs: %v", err)
		return 1
	}
	if mode == "console" {
		// fds 0-2 become the terminal: report on a copy of stderr.
		fd, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			fail("dup stderr: %v", err)
			return 1
		}
		report = os.NewFile(uintptr(fd), "report")
		debug.SetCrashOutput(report, debug.CrashOptions{})
		checkConsole(fail)
		// Give the testing package its output back.
		unix.Dup3(fd, 1, 0)
		unix.Dup3(fd, 2, 0)
		if failed {
			return 1
		}
		return 0
	}
	if err := runtime.PrepareProcess(s); err != nil {
		fail("PrepareProcess: %v", err)
		return 1
	}
	checkContainer(s, mode, fail)
	if failed {
		return 1
	}
	err = runtime.Exec(s)
	fmt.Fprintln(os.Stderr, err)
	return runtime.ExitCode(err)
}

type mountInfo struct{ root, options string }

func readMountinfo(fail func(string, ...any)) map[string]mountInfo {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		fail("mountinfo: %v", err)
		return nil
	}
	defer f.Close()
	mounts := map[string]mountInfo{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		mounts[fields[4]] = mountInfo{root: fields[3], options: fields[5]}
	}
	return mounts
}

func hasOption(options, opt string) bool {
	return slices.Contains(strings.Split(options, ","), opt)
}

func checkContainer(s *specs.Spec, mode string, fail func(string, ...any)) {
	mounts := readMountinfo(fail)
	want := []string{"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
		"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
		"/host-etc/hosts", "/proc/sys", "/proc/keys"}
	for _, w := range want {
		if _, ok := mounts[w]; !ok {
			fail("%s is not a mount point; mounts: %v", w, mounts)
		}
	}
	for mp := range mounts {
		if mp != "/" && !strings.HasPrefix(mp, "/proc") && !strings.HasPrefix(mp, "/dev") &&
			!strings.HasPrefix(mp, "/sys") && mp != "/host-etc/hosts" {
			fail("unexpected mount point %s (the old root was not detached?)", mp)
		}
	}
	if r := mounts["/"].root; !strings.HasSuffix(r, "/rootfs") {
		fail("/ is %q, want the rootfs", r)
	}
	for _, p := range []string{"/sys", "/proc/sys", "/proc/sysrq-trigger"} {
		if m, ok := mounts[p]; ok && !hasOption(m.options, "ro") {
			fail("%s is not read-only: %s", p, m.options)
		}
	}
	if err := os.WriteFile("/sys/kernel/uevent_helper", []byte("x"), 0); err == nil {
		fail("/sys is writable")
	}
	if mode == "host" {
		for mp, m := range mounts {
			if strings.HasPrefix(mp, "/sys/") && !hasOption(m.options, "ro") {
				fail("%s under the host's /sys is not read-only: %s", mp, m.options)
			}
		}
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil || len(b) != 0 {
			fail("%s is not masked: %d bytes, %v", p, len(b), err)
		}
	}
	for _, p := range []string{"/proc/acpi", "/proc/scsi", "/sys/firmware"} {
		ents, err := os.ReadDir(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil || len(ents) != 0 {
			fail("%s is not masked: %d entries, %v", p, len(ents), err)
		}
	}
	if err := os.WriteFile("/dev/null", []byte("x"), 0); err != nil {
		fail("write /dev/null: %v", err)
	}
	if f, err := os.Open("/dev/zero"); err != nil {
		fail("open /dev/zero: %v", err)
	} else {
		b := []byte{1, 2, 3, 4}
		if _, err := io.ReadFull(f, b); err != nil || !bytes.Equal(b, make([]byte, 4)) {
			fail("read /dev/zero: %v %v", b, err)
		}
		f.Close()
	}
	if err := os.WriteFile("/dev/full", []byte("x"), 0); !errors.Is(err, unix.ENOSPC) {
		fail("write /dev/full = %v, want ENOSPC", err)
	}
	for link, target := range map[string]string{"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd", "/dev/stderr": "/proc/self/fd/2"} {
		if got, err := os.Readlink(link); err != nil || got != target {
			fail("%s -> %q (%v), want %q", link, got, err, target)
		}
	}
	if b, err := os.ReadFile("/etc/hosts"); err != nil || !strings.Contains(string(b), "nooktest") {
		fail("/etc/hosts: %q %v", b, err)
	}
	if h, err := os.Hostname(); err != nil || h != "nooktest" {
		fail("hostname %q %v", h, err)
	}
	if os.Getpid() != 1 {
		fail("pid %d, want 1", os.Getpid())
	}
	ents, _ := os.ReadDir("/proc")
	pids := 0
	for _, e := range ents {
		if e.Name()[0] >= '0' && e.Name()[0] <= '9' {
			pids++
		}
	}
	if pids != 1 {
		fail("/proc shows %d processes, want 1", pids)
	}
	if s.Root.Readonly {
		err := os.WriteFile("/newfile", nil, 0o644)
		if !errors.Is(err, unix.EROFS) {
			fail("write to a read-only root = %v, want EROFS", err)
		}
		if err := os.WriteFile("/dev/shm/x", nil, 0o644); err != nil {
			fail("/dev/shm not writable under a read-only root: %v", err)
		}
	}
}

func checkConsole(fail func(string, ...any)) {
	// Here the child holds the only master, so closing it hangs up the
	// session it leads; nook's parent keeps a copy received over the socket.
	signal.Ignore(syscall.SIGHUP)
	master, err := SetupConsole()
	if err != nil {
		fail("SetupConsole: %v", err)
		return
	}
	defer master.Close()
	mounts := readMountinfo(fail)
	if _, ok := mounts["/dev/console"]; !ok {
		fail("/dev/console is not a mount point")
	}
	for fd := 0; fd <= 2; fd++ {
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
			fail("fd %d is not a terminal: %v", fd, err)
		}
	}
	if sid, _ := unix.Getsid(0); sid != os.Getpid() {
		fail("not a session leader: sid %d", sid)
	}
	if _, err := os.Stdout.WriteString("ping\n"); err != nil {
		fail("write to the terminal: %v", err)
	}
	buf := make([]byte, 64)
	n, err := master.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "ping") {
		fail("read from the master: %q %v", buf[:n], err)
	}
	if err := runtime.Setsid(); err != nil {
		fail("Setsid after SetupConsole: %v", err)
	}
}
