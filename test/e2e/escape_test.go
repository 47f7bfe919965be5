package e2e

// The escape suite: each test tries a known way out of a container (or of a
// chroot, which is what the lab used) and then asserts on the HOST that
// nothing changed: a file outside stays the same, a file does not appear,
// nook's binaries keep their hash. A command that merely fails proves little.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// escapeHelperSrc is a static program for what busybox cannot do. Each mode
// prints one line "MODE: RESULT" where RESULT is "ok" (the escape worked,
// with details) or the errno that stopped it.
const escapeHelperSrc = `package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

func errno(err error) string {
	if e, ok := err.(syscall.Errno); ok {
		return fmt.Sprintf("errno %d (%v)", int(e), e)
	}
	return err.Error()
}

func main() {
	switch os.Args[1] {
	case "open_by_handle_at":
		// The "shocker" exploit: a handle of inode 2 (the root of most
		// file systems), opened against a descriptor of the container's /.
		fd, err := syscall.Open("/", syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err != nil {
			fmt.Println("open_by_handle_at: open /:", errno(err))
			return
		}
		var h struct {
			bytes uint32
			typ   int32
			ino   uint32
			gen   uint32
		}
		h.bytes, h.typ, h.ino = 8, 1, 2 // FILEID_INO32_GEN
		nr := map[string]uintptr{"amd64": 304, "arm64": 265}[runtime.GOARCH]
		r, _, e := syscall.Syscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&h)), syscall.O_RDONLY)
		if e != 0 {
			fmt.Println("open_by_handle_at:", errno(e))
			return
		}
		fmt.Println("open_by_handle_at: ok fd", r)
	case "chroot":
		// The classic: chroot into a subdirectory without changing into
		// it, then walk ".." above the new root and chroot there.
		target := os.Args[2]
		os.MkdirAll("/jail", 0o755)
		if err := syscall.Chroot("/jail"); err != nil {
			fmt.Println("chroot:", errno(err))
			return
		}
		for i := 0; i < 64; i++ {
			syscall.Chdir("..")
		}
		if err := syscall.Chroot("."); err != nil {
			fmt.Println("chroot: second chroot:", errno(err))
			return
		}
		if _, err := os.Stat(target); err != nil {
			fmt.Println("chroot: host file not reached:", err)
			return
		}
		fmt.Println("chroot: ok, reached", target)
	case "fds":
		// Every descriptor above 2, and fchdir through each (CVE-2024-21626).
		open := 0
		for fd := 3; fd < 1024; fd++ {
			var st syscall.Stat_t
			if syscall.Fstat(fd, &st) != nil {
				continue
			}
			open++
			link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			fmt.Printf("fds: open fd %d -> %s\n", fd, link)
			if syscall.Fchdir(fd) == nil {
				wd, _ := os.Getwd()
				fmt.Printf("fds: fchdir %d worked: %s\n", fd, wd)
			}
		}
		fmt.Println("fds:", open, "open")
	case "ptrace":
		pid, _ := strconv.Atoi(os.Args[2])
		_, _, e := syscall.Syscall6(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, uintptr(pid), 0, 0, 0, 0)
		if e != 0 {
			fmt.Println("ptrace:", errno(e))
			return
		}
		fmt.Println("ptrace: ok, attached to", pid)
	case "mknod":
		err := syscall.Mknod(os.Args[2], syscall.S_IFBLK|0o600, 8<<8|0)
		if err != nil {
			fmt.Println("mknod:", errno(err))
			return
		}
		fmt.Println("mknod: ok")
	}
}
`

var escapeHelperBuild = staticHelper{name: "escape", src: escapeHelperSrc}

// escapeHelper builds the helper once (CGO_ENABLED=0, static) into a
// directory that tests bind-mount at /helper; it returns that directory.
func escapeHelper(t *testing.T) string { return escapeHelperBuild.dir(t) }

// hostFile makes a file outside every container, with known content.
func hostFile(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func assertFileContent(t *testing.T, p, want string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("host file %s: %v (it must still be there)", p, err)
		return
	}
	if string(b) != want {
		t.Errorf("host file %s changed: %q, want %q", p, b, want)
	}
}

func assertDirEntries(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("host directory %s holds %v, want %v", dir, got, want)
	}
}

func sha(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestEscapeChroot: chroot into a subdirectory and ".." upward reaches the
// container's root, never the host's (pivot_root detached the old root).
func TestEscapeChroot(t *testing.T) {
	s := useMain(t)
	helper := escapeHelper(t)
	marker := hostFile(t, "host-only", "host\n")
	for _, flags := range [][]string{nil, {"--privileged"}} {
		args := append([]string{"run", "--rm", "-v", helper + ":/helper:ro"}, flags...)
		r := s.nook(t, append(args, "demo", "/helper/escape", "chroot", marker)...)
		assertExit(t, r, 0)
		assertContains(t, "chroot escape "+strings.Join(flags, " "), r.Stdout, "host file not reached")
		assertNotContains(t, "chroot escape", r.Stdout, "ok, reached")
	}
	assertFileContent(t, marker, "host\n")
}

// TestEscapeLeakedFds: the payload gets no descriptor but 0-2 (none to
// fchdir through), and a working directory given as /proc/self/fd/N
// (CVE-2024-21626) does not land outside the container.
func TestEscapeLeakedFds(t *testing.T) {
	s := useMain(t)
	helper := escapeHelper(t)
	r := s.nook(t, "run", "--rm", "-v", helper+":/helper:ro", "demo", "/helper/escape", "fds")
	assertExit(t, r, 0)
	assertContains(t, "open descriptors", r.Stdout, "fds: 0 open")

	marker := hostFile(t, "cwd-marker", "host\n")
	up := strings.Repeat("../", 12) + strings.TrimPrefix(marker, "/")
	for fd := 3; fd <= 12; fd++ {
		r := s.nook(t, "run", "--rm", "-w", fmt.Sprintf("/proc/self/fd/%d", fd), "demo",
			"sh", "-c", "readlink /proc/self/cwd; cat "+up+" && echo ESCAPED; echo x > escaped-"+strconv.Itoa(fd))
		assertNotContains(t, fmt.Sprintf("-w /proc/self/fd/%d", fd), r.Stdout, "ESCAPED")
		if r.Code == 0 {
			// It ran: its working directory must be inside the container.
			cwd := strings.SplitN(r.Stdout, "\n", 2)[0]
			if !strings.HasPrefix(cwd, "/") || strings.Contains(cwd, "e2e-nook") {
				t.Errorf("-w /proc/self/fd/%d: the working directory is %q", fd, cwd)
			}
		}
	}
	assertDirEntries(t, filepath.Dir(marker), "cwd-marker")
	assertFileContent(t, marker, "host\n")
}

// TestEscapeProcHostProcess: no host process is visible, so neither its
// /proc/PID/root nor ptrace reaches it; kill -0 fails too.
func TestEscapeProcHostProcess(t *testing.T) {
	s := useMain(t)
	helper := escapeHelper(t)
	self := strconv.Itoa(os.Getpid()) // this test process: the user's own, on the host
	for _, flags := range [][]string{nil, {"--privileged"}} {
		args := append([]string{"run", "--rm", "-v", helper + ":/helper:ro"}, flags...)
		r := s.nook(t, append(args, "demo", "sh", "-c",
			"ls /proc/"+self+"/root/ 2>&1 && echo ROOT-VISIBLE; kill -0 "+self+" 2>/dev/null && echo KILLABLE; "+
				"/helper/escape ptrace "+self+"; ls -d /proc/[0-9]* | wc -l")...)
		what := "host pid " + self + " " + strings.Join(flags, " ")
		assertNotContains(t, what, r.Stdout, "ROOT-VISIBLE")
		assertNotContains(t, what, r.Stdout, "KILLABLE")
		assertContains(t, what, r.Stdout, "ptrace: errno 3 (no such process)")
		lines := r.Lines()
		if n, _ := strconv.Atoi(strings.TrimSpace(lines[len(lines)-1])); n == 0 || n > 5 {
			t.Errorf("%s: the container sees %d processes, want only its own few", what, n)
		}
	}
}

// TestEscapeMountHostProcSys: without CAP_SYS_ADMIN mount fails; with
// --privileged a new proc shows only the container's PID namespace, and
// sysfs stays the kernel's, owned by the host's root: not writable.
func TestEscapeMountHostProcSys(t *testing.T) {
	s := useMain(t)
	self := strconv.Itoa(os.Getpid())
	r := s.nook(t, "run", "--rm", "demo", "sh", "-c", "mkdir -p /mnt/p; mount -t proc proc /mnt/p && echo MOUNTED")
	assertNotContains(t, "mount proc, default capabilities", r.Stdout, "MOUNTED")

	r = s.nook(t, "run", "--rm", "--privileged", "demo", "sh", "-c",
		"mkdir -p /mnt/p /mnt/s; mount -t proc proc /mnt/p && echo PROC-MOUNTED; ls -d /mnt/p/[0-9]* | wc -l; test -e /mnt/p/"+self+" && echo HOST-PID-VISIBLE;"+
			"mount -t sysfs sysfs /mnt/s && echo SYS-MOUNTED; for f in /mnt/s/kernel/* /sys/kernel/*; do [ -f $f ] && (echo 1 > $f) 2>/dev/null && echo WROTE $f; done; true")
	assertExit(t, r, 0)
	assertContains(t, "privileged: a proc of its own", r.Stdout, "PROC-MOUNTED")
	assertNotContains(t, "privileged: host pid in the new proc", r.Stdout, "HOST-PID-VISIBLE")
	assertNotContains(t, "privileged: write to /sys/kernel", r.Stdout, "WROTE")
}

// TestEscapeMknod: a block device cannot be made, not even privileged, and
// none appears.
func TestEscapeMknod(t *testing.T) {
	s := useMain(t)
	helper := escapeHelper(t)
	for _, flags := range [][]string{nil, {"--privileged"}} {
		args := append([]string{"run", "--rm", "-v", helper + ":/helper:ro"}, flags...)
		r := s.nook(t, append(args, "demo", "sh", "-c",
			"mknod /tmp/sda b 8 0 && echo BB-MADE; /helper/escape mknod /tmp/sdb; ls -l /tmp/sda /tmp/sdb 2>&1; true")...)
		what := "mknod " + strings.Join(flags, " ")
		assertNotContains(t, what, r.Stdout, "BB-MADE")
		assertContains(t, what, r.Stdout, "mknod: errno 1 (operation not permitted)")
	}
}

// TestEscapeOpenByHandleAt: the "shocker" call is refused (seccomp and
// no CAP_DAC_READ_SEARCH), and even unconfined and privileged the kernel
// refuses it in a user namespace.
func TestEscapeOpenByHandleAt(t *testing.T) {
	s := useMain(t)
	helper := escapeHelper(t)
	for _, flags := range [][]string{nil, {"--security-opt", "seccomp=unconfined"}, {"--privileged"}} {
		args := append([]string{"run", "--rm", "-v", helper + ":/helper:ro"}, flags...)
		r := s.nook(t, append(args, "demo", "/helper/escape", "open_by_handle_at")...)
		assertExit(t, r, 0)
		assertContains(t, "open_by_handle_at "+strings.Join(flags, " "), r.Stdout, "open_by_handle_at: errno 1 (operation not permitted)")
	}
}

// TestEscapeProcSysWrites: /proc/sys and /proc/sysrq-trigger are read-only,
// and even privileged (read-write /proc) they belong to the host's root.
func TestEscapeProcSysWrites(t *testing.T) {
	s := useMain(t)
	const knob = "/proc/sys/kernel/printk_ratelimit"
	before, err := os.ReadFile(knob)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(before)))
	for _, flags := range [][]string{nil, {"--privileged"}} {
		args := append([]string{"run", "--rm"}, flags...)
		r := s.nook(t, append(args, "demo", "sh", "-c",
			fmt.Sprintf("(echo %d > %s) 2>/dev/null && echo WROTE-SYSCTL; (echo h > /proc/sysrq-trigger) 2>/dev/null && echo WROTE-SYSRQ; true", n+7, knob))...)
		what := "proc writes " + strings.Join(flags, " ")
		assertExit(t, r, 0)
		assertNotContains(t, what, r.Stdout, "WROTE-SYSCTL")
		assertNotContains(t, what, r.Stdout, "WROTE-SYSRQ")
	}
	if after, _ := os.ReadFile(knob); string(after) != string(before) {
		t.Errorf("host %s changed from %q to %q", knob, before, after)
	}
}

// TestEscapeOverwriteNookBinary (CVE-2019-5736): no process of the
// container runs nook's binaries, so /proc/*/exe never leads to them; and
// writing through every exe link leaves them unchanged.
func TestEscapeOverwriteNookBinary(t *testing.T) {
	s := useMain(t)
	runtimeBin := filepath.Join(filepath.Dir(nookBin), "nook-runtime")
	engineBin := filepath.Join(filepath.Dir(nookBin), "nook-engine")
	leanBin := filepath.Join(filepath.Dir(nookBin), "nook-engine-lean")
	before := []string{sha(t, nookBin), sha(t, engineBin), sha(t, leanBin), sha(t, runtimeBin)}
	for _, flags := range [][]string{nil, {"--privileged"}} {
		args := append([]string{"run", "--rm"}, flags...)
		r := s.nook(t, append(args, "demo", "sh", "-c",
			"for p in /proc/[0-9]*; do echo \"$p $(readlink $p/exe) $(tr '\\0' ' ' < $p/cmdline)\"; done; "+
				"for p in /proc/[0-9]*; do (printf '#!/bin/sh\\necho pwned\\n' >> $p/exe) 2>/dev/null && echo APPENDED $p; done; true")...)
		assertExit(t, r, 0)
		what := "exe links " + strings.Join(flags, " ")
		assertNotContains(t, what, r.Stdout, "nook")
	}
	after := []string{sha(t, nookBin), sha(t, engineBin), sha(t, leanBin), sha(t, runtimeBin)}
	if strings.Join(before, " ") != strings.Join(after, " ") {
		t.Errorf("nook's binaries changed: %v -> %v", before, after)
	}
}

// TestEscapeSymlinkMountTarget (CVE-2021-30465 style): mount targets are
// resolved inside the container's root. A symlink in the image or in a
// volume (planted by an earlier container) that points to a host directory,
// absolute or through "..", or to "/", never makes nook mount on the host.
func TestEscapeSymlinkMountTarget(t *testing.T) {
	s := newStore(t, "symlink", storeOptions{}, false)
	victim := t.TempDir()
	_ = os.Chmod(victim, 0o755)
	if err := os.WriteFile(filepath.Join(victim, "keep"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	_ = os.Chmod(src, 0o755)
	if err := os.WriteFile(filepath.Join(src, "payload"), []byte("from the bind source\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// An image with the traps in it.
	img := filepath.Join(t.TempDir(), "traps.tar")
	writeEscapeLayer(t, img, busyboxTar, []escapeEntry{
		{name: "abs", link: victim, typ: tar.TypeSymlink},
		{name: "rel", link: strings.Repeat("../", 10) + strings.TrimPrefix(victim, "/"), typ: tar.TypeSymlink},
		{name: "toroot", link: "/", typ: tar.TypeSymlink},
	})
	s.mustNook(t, "import", img, "traps")
	for _, target := range []string{"/abs/x", "/rel/x", "/abs", "/rel"} {
		r := s.nook(t, "run", "--rm", "-v", src+":"+target, "traps", "sh", "-c", "cat "+target+"/payload && echo > "+target+"/written")
		assertExit(t, r, 0)
		assertContains(t, "-v on "+target, r.Stdout, "from the bind source")
	}
	r := s.nook(t, "run", "--rm", "-v", src+":/toroot", "traps", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "/toroot", "root")

	// A volume where a first container plants a link, used by a second.
	s.mustNook(t, "volume", "create", "planted")
	s.sh(t, "ln -s "+victim+" /data/sub; ln -s / /data/root", "-v", "planted:/data")
	r = s.nook(t, "run", "--rm", "-v", "planted:/data", "-v", src+":/data/sub/y", "demo", "sh", "-c", "ls /data/sub/y")
	assertExit(t, r, 0)
	r = s.nook(t, "run", "--rm", "-v", "planted:/data", "-v", src+":/data/root", "demo", "true")
	assertExit(t, r, 125)

	assertDirEntries(t, victim, "keep")
	assertFileContent(t, filepath.Join(victim, "keep"), "host\n")
	assertDirEntries(t, src, "payload", "written") // the bind source is the container's to write
}

// TestEscapeLayerTarball: imported layers with ".." paths, an absolute
// symlink followed by a file, and hard links to host files (absolute or
// through "..") leave the host untouched: each is refused with nothing left
// in the store, or imported with what it names kept inside the container.
func TestEscapeLayerTarball(t *testing.T) {
	s := newStore(t, "evil-layer", storeOptions{}, true)
	s.mustNook(t, "images") // the store's own directories exist before the first "before"
	victim := t.TempDir()
	_ = os.Chmod(victim, 0o755)
	secret := filepath.Join(victim, "secret")
	if err := os.WriteFile(secret, []byte("host secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 12) + strings.TrimPrefix(victim, "/")
	for i, trap := range [][]escapeEntry{
		{{name: up + "/dotdot", body: "pwned\n"}},
		{{name: "abs", link: victim, typ: tar.TypeSymlink}, {name: "abs/through-symlink", body: "pwned\n"}},
		{{name: "rel", link: up, typ: tar.TypeSymlink}, {name: "rel/through-relative-symlink", body: "pwned\n"}},
		{{name: "hard", link: secret, typ: tar.TypeLink}},
		{{name: "hard", link: up + "/secret", typ: tar.TypeLink}},
	} {
		name := fmt.Sprintf("evil%d", i)
		img := filepath.Join(t.TempDir(), name+".tar")
		writeEscapeLayer(t, img, busyboxTar, trap)
		before := graphEntries(s)
		r := s.nook(t, "import", img, name)
		if r.Code != 0 {
			assertExit(t, r, 125)
			assertNoNewGraphEntries(t, s, before, "a refused import of trap "+trap[0].name)
			continue
		}
		r = s.nook(t, "run", "--rm", name, "sh", "-c", "cat /hard 2>&1; echo changed > /hard; ls /abs/ /rel/ 2>&1; echo x > /abs/y; echo x > /rel/y; true")
		assertNotContains(t, "trap "+trap[0].name, r.Stdout, "host secret")
	}
	assertDirEntries(t, victim, "secret")
	assertFileContent(t, secret, "host secret\n")
}

type escapeEntry struct {
	name, link, body string
	typ              byte
}

// writeEscapeLayer writes base's entries followed by extra to out.
func writeEscapeLayer(t *testing.T, out, base string, extra []escapeEntry) {
	t.Helper()
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range extra {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if e.typ == 0 {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if e.typ == tar.TypeSymlink {
			h.Mode = 0o777
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			_, _ = tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
