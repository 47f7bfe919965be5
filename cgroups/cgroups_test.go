package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"1048576": 1 << 20, "256m": 256 << 20, "256M": 256 << 20, "1g": 1 << 30, "1GB": 1 << 30,
		"2k": 2048, "2kb": 2048, "10b": 10, "0.5g": 512 << 20, "1t": 1 << 40, "3MiB": 3 << 20,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1m", "12q", "1e400", "abc"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]string{"0.5": "50000 100000", "1": "100000 100000", "2.25": "225000 100000", "0.01": "1000 100000"} {
		q, p, err := ParseCPUs(in)
		if err != nil || CPUMax(q, p) != want {
			t.Errorf("ParseCPUs(%q) -> cpu.max %q, %v; want %q", in, CPUMax(q, p), err, want)
		}
	}
	for _, in := range []string{"0", "-1", "x", "0.001", ""} {
		if _, _, err := ParseCPUs(in); err == nil {
			t.Errorf("ParseCPUs(%q) accepted", in)
		}
	}
	if CPUMax(0, 0) != "max 100000" {
		t.Errorf("no quota: %q", CPUMax(0, 0))
	}
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }

func TestFiles(t *testing.T) {
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20)},
		CPU:    &specs.LinuxCPU{Quota: i64(50000), Period: u64(100000)},
		Pids:   &specs.LinuxPids{Limit: i64(100)},
		BlockIO: &specs.LinuxBlockIO{
			Weight:                 u16(200),
			ThrottleReadBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1048576}},
			ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 2097152}},
		},
	}
	files, ctrls, err := Files(r)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Name+"="+f.Value)
	}
	want := "memory.max=268435456 memory.swap.max=268435456 cpu.max=50000 100000 pids.max=100 io.max=8:0 rbps=1048576 wbps=2097152 io.weight=default 200"
	if strings.Join(got, " ") != want {
		t.Errorf("files\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if strings.Join(ctrls, " ") != "memory cpu pids io" {
		t.Errorf("controllers %v", ctrls)
	}
	// Unlimited swap, unlimited pids.
	files, _, _ = Files(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 20), Swap: i64(-1)}, Pids: &specs.LinuxPids{Limit: i64(-1)}})
	if len(files) != 3 || files[1].Value != "max" || files[2].Value != "max" {
		t.Errorf("unlimited: %+v", files)
	}
	if _, _, err := Files(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2 << 20), Swap: i64(1 << 20)}}); err == nil {
		t.Errorf("swap below memory accepted")
	}
	if f, c, err := Files(nil); f != nil || c != nil || err != nil {
		t.Errorf("no resources: %v %v %v", f, c, err)
	}
}

// fakeTree makes a cgroup2 tree as systemd lays it out for a user session:
// root-owned slices above user@UID.service, which the user owns.
func fakeTree(t *testing.T, subtree, controllers, procs string) (mnt, self string) {
	t.Helper()
	mnt = t.TempDir()
	svc := filepath.Join(mnt, "user.slice/user-1000.slice/user@1000.service")
	scope := filepath.Join(svc, "app.slice/run-r1.scope")
	if err := os.MkdirAll(scope, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{svc, filepath.Join(svc, "app.slice"), scope} {
		write(filepath.Join(d, "cgroup.procs"), "")
		write(filepath.Join(d, "cgroup.subtree_control"), "")
		write(filepath.Join(d, "cgroup.controllers"), controllers)
	}
	write(filepath.Join(svc, "cgroup.subtree_control"), subtree)
	write(filepath.Join(svc, "cgroup.procs"), procs)
	write(filepath.Join(scope, "cgroup.procs"), "4242\n")
	return mnt, "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope\n"
}

func TestDetect(t *testing.T) {
	mnt, self := fakeTree(t, "memory pids", "cpu memory pids io", "")
	svc := filepath.Join(mnt, "user.slice/user-1000.slice/user@1000.service")
	uid := os.Getuid()
	// As on a real host, the slices above user@1000.service belong to root
	// (here: another uid, which needs root to chown); only the service is
	// the user's.
	want := filepath.Join(mnt, "user.slice")
	if uid == 0 {
		uid = 1000
		_ = filepath.Walk(svc, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, uid) })
		want = svc
	}
	for _, p := range []string{"user.slice", "user.slice/user-1000.slice"} {
		for _, f := range []string{"cgroup.procs", "cgroup.subtree_control"} {
			if err := os.WriteFile(filepath.Join(mnt, p, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	d := Detect(mnt, self, uid, true, false)
	if d.Version != V2 || !d.Usable() || d.Root != want {
		t.Fatalf("delegated tree: %+v, want root %s", d, want)
	}
	if want == svc && strings.Join(d.Controllers, " ") != "memory pids cpu io" {
		t.Errorf("controllers %v", d.Controllers)
	}

	// Nobody's delegation: another uid owns everything.
	d = Detect(mnt, self, uid+1, true, false)
	if d.Usable() || !strings.Contains(d.Reason, "not delegated") || !strings.Contains(d.Reason, "systemd-run --user --scope") {
		t.Errorf("undelegated: %+v", d)
	}
	// Hybrid and v1 hosts.
	if d := Detect(mnt, self, uid, false, true); d.Usable() || d.Version != Hybrid || !strings.Contains(d.Reason, "hybrid") {
		t.Errorf("hybrid: %+v", d)
	}
	if d := Detect(mnt, self, uid, false, false); d.Usable() || d.Version != V1 {
		t.Errorf("v1: %+v", d)
	}
	if d := Detect(mnt, "", uid, true, false); d.Usable() {
		t.Errorf("no /proc/self/cgroup line: %+v", d)
	}

	// A delegated root that holds processes can pass down only what is
	// already enabled below it.
	mnt2, self2 := fakeTree(t, "memory", "cpu memory pids", "77\n")
	svc2 := filepath.Join(mnt2, "user.slice/user-1000.slice/user@1000.service")
	d = Detect(mnt2, self2, os.Getuid(), true, false)
	if d.Root == svc2 && strings.Join(d.Controllers, " ") != "memory" {
		t.Errorf("busy root: controllers %v, want memory", d.Controllers)
	}
}

func TestCheckAndCreate(t *testing.T) {
	mnt, self := fakeTree(t, "memory pids", "memory pids", "")
	svc := filepath.Join(mnt, "user.slice/user-1000.slice/user@1000.service")
	d := Delegation{Version: V2, Root: svc, Controllers: []string{"memory", "pids"}}
	_ = self

	cpu := &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(50000), Period: u64(100000)}}
	if err := Check(d, cpu); !errors.Is(err, ErrNotDelegated) || !strings.Contains(err.Error(), "cpu") {
		t.Errorf("cpu without the cpu controller: %v", err)
	}
	if err := Check(Delegation{Version: Hybrid, Reason: "hybrid host"}, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(10)}}); !errors.Is(err, ErrNotDelegated) || !strings.Contains(err.Error(), "hybrid host") {
		t.Errorf("hybrid: %v", err)
	}
	if err := Check(Delegation{Version: Hybrid}, nil); err != nil {
		t.Errorf("no limits asked must not need a cgroup: %v", err)
	}

	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}, Pids: &specs.LinuxPids{Limit: i64(20)}}
	c, err := Create(d, "abc123", r)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != filepath.Join(svc, "nook", "abc123") {
		t.Errorf("path %s", c.Path)
	}
	for f, want := range map[string]string{"memory.max": "67108864", "pids.max": "20"} {
		if b, _ := os.ReadFile(filepath.Join(c.Path, f)); string(b) != want {
			t.Errorf("%s = %q, want %q", f, b, want)
		}
	}
	// The parent passes the controllers down (one "+ctrl" write each; a
	// plain file keeps the last).
	if b, _ := os.ReadFile(filepath.Join(svc, "nook", "cgroup.subtree_control")); string(b) != "+pids" {
		t.Errorf("nook/cgroup.subtree_control = %q", b)
	}
	if err := c.AddProcess(4242); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(c.Path, "cgroup.procs")); string(b) != "4242" {
		t.Errorf("cgroup.procs = %q", b)
	}
	_ = os.WriteFile(filepath.Join(c.Path, "memory.current"), []byte("1234\n"), 0o644)
	_ = os.WriteFile(filepath.Join(c.Path, "cpu.stat"), []byte("usage_usec 999\nuser_usec 1\n"), 0o644)
	s, err := ReadStats(c.Path)
	if err != nil || s.MemoryUsage != 1234 || s.MemoryLimit != 64<<20 || s.PidsLimit != 20 || s.CPUUsec != 999 {
		t.Errorf("stats %+v, %v", s, err)
	}
}
