package runtime

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseCapability(t *testing.T) {
	tests := []struct {
		name string
		want int
	}{
		{"CAP_CHOWN", 0},
		{"chown", 0},
		{"NET_RAW", 13},
		{"cap_sys_admin", 21},
		{" CAP_AUDIT_WRITE ", 29},
		{"CAP_SETFCAP", 31},
		{"CAP_CHECKPOINT_RESTORE", 40},
		{"CAP_FLY", -1},
		{"", -1},
		{"ALL", -1},
	}
	for _, tt := range tests {
		got, err := ParseCapability(tt.name)
		if got != tt.want || (err != nil) != (tt.want < 0) {
			t.Errorf("ParseCapability(%q) = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	for c := 0; c <= LastCapability; c++ {
		if n, err := ParseCapability(CapabilityName(c)); n != c || err != nil {
			t.Errorf("capability %d round trip: %d %v", c, n, err)
		}
	}
	if CapabilityName(41) != "" || CapabilityName(-1) != "" || len(AllCapabilities()) != 41 {
		t.Errorf("table bounds")
	}
}

func TestCapabilityMask(t *testing.T) {
	tests := []struct {
		names []string
		want  uint64
		err   bool
	}{
		{nil, 0, false},
		// Docker's default set: CapEff in /proc/self/status of a container.
		{DefaultCapabilities, 0xa80425fb, false},
		{[]string{"CAP_CHECKPOINT_RESTORE", "CAP_CHOWN"}, 1<<40 | 1, false},
		{[]string{"CAP_KILL", "CAP_KILL"}, 1 << 5, false},
		{[]string{"CAP_KILL", "CAP_NOPE"}, 0, true},
	}
	for _, tt := range tests {
		got, err := CapabilityMask(tt.names)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("CapabilityMask(%v) = %#x, %v; want %#x", tt.names, got, err, tt.want)
		}
	}
	if capMaskUpTo(40) != 1<<41-1 || capMaskUpTo(63) != ^uint64(0) || capMaskUpTo(0) != 1 {
		t.Errorf("capMaskUpTo")
	}
	s, err := capSetsFromSpec(&specs.LinuxCapabilities{Bounding: DefaultCapabilities, Ambient: []string{"CAP_KILL"}})
	if err != nil || s.bounding != 0xa80425fb || s.ambient != 1<<5 || s.effective != 0 {
		t.Errorf("capSetsFromSpec = %+v, %v", s, err)
	}
	if _, err := capSetsFromSpec(&specs.LinuxCapabilities{Permitted: []string{"CAP_X"}}); err == nil || !strings.Contains(err.Error(), "permitted") {
		t.Errorf("capSetsFromSpec with a bad name: %v", err)
	}
}

func TestLookPath(t *testing.T) {
	root := t.TempDir()
	mk := func(p string, mode os.FileMode) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("usr/bin/sh", 0o755)
	mk("bin/sh", 0o755)
	mk("usr/local/bin/noexec", 0o644)
	mk("usr/bin/noexec", 0o755)
	mk("etc/passwd", 0o644)
	mk("opt/only-noexec", 0o644)
	if err := os.MkdirAll(filepath.Join(root, "usr/local/bin/adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	const path = "/usr/local/bin:/usr/bin:/bin"
	tests := []struct {
		file, path string
		want       string
		code       int
		msg        string
	}{
		{"sh", path, "/usr/bin/sh", 0, ""},
		{"sh", "/bin:/usr/bin", "/bin/sh", 0, ""},
		{"noexec", path, "/usr/bin/noexec", 0, ""}, // a non-executable candidate is skipped
		{"adir", path, "", 127, `exec: "adir": executable file not found in $PATH`},
		{"only-noexec", "/opt", "", 127, `exec: "only-noexec": executable file not found in $PATH`},
		{"foo", path, "", 127, `exec: "foo": executable file not found in $PATH`},
		{"sh", "", "", 127, `exec: "sh": executable file not found in $PATH`},
		{"/bin/sh", "", "/bin/sh", 0, ""},
		{"/nope", path, "", 127, `exec: "/nope": no such file or directory`},
		{"/etc/passwd", path, "", 126, `exec: "/etc/passwd": permission denied`},
		{"/usr", path, "", 126, `exec: "/usr": is a directory`},
		{"", path, "", 127, `exec: "": executable file not found in $PATH`},
	}
	for _, tt := range tests {
		got, err := lookPath(root, tt.file, tt.path)
		if tt.code == 0 {
			if err != nil || got != tt.want {
				t.Errorf("lookPath(%q, %q) = %q, %v; want %q", tt.file, tt.path, got, err, tt.want)
			}
			continue
		}
		var ee *ExecError
		if !errors.As(err, &ee) || ee.Code != tt.code || err.Error() != tt.msg || ExitCode(err) != tt.code {
			t.Errorf("lookPath(%q, %q) error = %v (%T), want code %d %q", tt.file, tt.path, err, err, tt.code, tt.msg)
		}
	}
	if _, err := lookPath(root, "foo", path); !errors.Is(err, ErrNotFound) {
		t.Errorf("not found does not match ErrNotFound: %v", err)
	}
}

func TestPathFromEnv(t *testing.T) {
	if p := pathFromEnv([]string{"A=1", "PATH=/a", "PATHX=/x", "PATH=/b"}); p != "/b" {
		t.Errorf("pathFromEnv = %q", p)
	}
	if p := pathFromEnv(nil); p != "" {
		t.Errorf("pathFromEnv(nil) = %q", p)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("mount failed"), 125},
		{&ExecError{Code: 127, Name: "x", Err: ErrNotFound}, 127},
		{&ExecError{Code: 126, Name: "x", Err: unix.EACCES}, 126},
		{fmt.Errorf("start: %w", &ExecError{Code: 126, Name: "x", Err: unix.ENOEXEC}), 126},
		{&ExecError{Name: "x", Err: unix.EIO}, 125},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestParseRlimit(t *testing.T) {
	if r, err := ParseRlimit("RLIMIT_NOFILE"); r != unix.RLIMIT_NOFILE || err != nil {
		t.Errorf("RLIMIT_NOFILE = %d, %v", r, err)
	}
	if r, err := ParseRlimit("RLIMIT_NPROC"); r != unix.RLIMIT_NPROC || err != nil {
		t.Errorf("RLIMIT_NPROC = %d, %v", r, err)
	}
	if _, err := ParseRlimit("RLIMIT_FOO"); err == nil {
		t.Errorf("RLIMIT_FOO accepted")
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	if cur.Max != unix.RLIM_INFINITY {
		err := SetRlimits([]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: cur.Max + 1, Soft: cur.Max + 1}})
		if unix.Geteuid() != 0 && (err == nil || !strings.Contains(err.Error(), "hard limit")) {
			t.Errorf("raising the hard limit: %v", err)
		}
		// Root may hold CAP_SYS_RESOURCE: put the limit back either way.
		unix.Setrlimit(unix.RLIMIT_NOFILE, &cur)
	}
}

func TestSendRecvFd(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	defer a.Close()
	defer b.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := SendFd(a, w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := RecvFd(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name() != "|1" {
		t.Errorf("received name %q, want the sender's %q", got.Name(), "|1")
	}
	if flags, _ := unix.FcntlInt(got.Fd(), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("received fd is not close-on-exec")
	}
	if _, err := got.WriteString("through"); err != nil {
		t.Fatal(err)
	}
	got.Close()
	if data, _ := io.ReadAll(r); string(data) != "through" {
		t.Errorf("read %q through the received fd", data)
	}
	a.Close()
	if _, err := RecvFd(b); !errors.Is(err, io.EOF) {
		t.Errorf("RecvFd on a closed peer = %v, want EOF", err)
	}
}

// TestImports guards the boundary: runtime and overlay go into the small
// nook-runtime binary and may import only the standard library,
// golang.org/x/sys/unix and the runtime-spec types, also through the
// project's own packages (STYLE.md: like go-containerregistry's
// depcheck_test.go). It reads the sources, so it needs no go command.
func TestImports(t *testing.T) {
	const module = "github.com/nook-containers/nook/"
	seen := map[string]bool{}
	var check func(pkg, dir, from string)
	check = func(pkg, dir, from string) {
		if seen[pkg] {
			return
		}
		seen[pkg] = true
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no sources for %s in %s: %v", pkg, dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range ast.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				first, _, _ := strings.Cut(path, "/")
				switch {
				case !strings.Contains(first, "."): // the standard library
				case path == "golang.org/x/sys/unix", path == "github.com/opencontainers/runtime-spec/specs-go":
				case strings.HasPrefix(path, module):
					check(path, filepath.Join("..", strings.TrimPrefix(path, module)), from)
				default:
					t.Errorf("%s imports %s (in %s), which nook-runtime must not link", from, path, f)
				}
			}
		}
	}
	check(module+"runtime", ".", "runtime")
	check(module+"overlay", "../overlay", "overlay")
}
