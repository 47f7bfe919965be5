package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The filter is judged by running system calls under it: the test binary
// runs itself again (seccompChild) with a profile, loads the compiled
// filter and reports the errno of each probe.

const seccompChildEnv = "NOOK_TEST_SECCOMP_CHILD"

func TestMain(m *testing.M) {
	if profile := os.Getenv(seccompChildEnv); profile != "" {
		os.Exit(seccompChild(profile, strings.Fields(os.Getenv("NOOK_TEST_SECCOMP_PROBES"))))
	}
	os.Exit(m.Run())
}

// probe is a raw system call: "name:arg0:arg1:...", numbers in any base Go reads.
func runProbe(p string) (uintptr, unix.Errno, error) {
	f := strings.Split(p, ":")
	nr, ok := seccompArches[0].lookup(f[0])
	if !ok {
		return 0, 0, fmt.Errorf("unknown syscall %s", f[0])
	}
	var a [6]uintptr
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return 0, 0, err
		}
		a[i] = uintptr(v)
	}
	r, _, errno := unix.RawSyscall6(uintptr(nr), a[0], a[1], a[2], a[3], a[4], a[5])
	return r, errno, nil
}

func seccompChild(profile string, probes []string) int {
	goruntime.LockOSThread()
	b, err := os.ReadFile(profile)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	var s specs.LinuxSeccomp
	if err := json.Unmarshal(b, &s); err != nil {
		fmt.Println(err)
		return 2
	}
	p, err := CompileSeccomp(&s)
	if err != nil {
		fmt.Println("compile:", err)
		return 2
	}
	p.Flags |= unix.SECCOMP_FILTER_FLAG_TSYNC
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println(err)
		return 2
	}
	if err := LoadSeccomp(p); err != nil {
		fmt.Println(err)
		return 2
	}
	var out []string
	for _, pr := range probes {
		_, errno, err := runProbe(pr)
		if err != nil {
			fmt.Println(err)
			return 2
		}
		out = append(out, strconv.Itoa(int(errno)))
	}
	fmt.Println(strings.Join(out, " "))
	return 0
}

// underFilter runs probes in a child under s; it returns each probe's errno
// (0 for success) or the signal that killed the child.
func underFilter(t *testing.T, s *specs.LinuxSeccomp, probes []string) ([]int, syscall.Signal) {
	t.Helper()
	if len(seccompArches) == 0 {
		t.Skip("no syscall table for " + goruntime.GOARCH)
	}
	b, _ := json.Marshal(s)
	f := t.TempDir() + "/profile.json"
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), seccompChildEnv+"="+f, "NOOK_TEST_SECCOMP_PROBES="+strings.Join(probes, " "))
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			return nil, ws.Signal()
		}
		t.Fatalf("seccomp child: %v: %s", err, out)
	} else if err != nil {
		t.Fatal(err)
	}
	var res []int
	for _, w := range strings.Fields(string(out)) {
		n, err := strconv.Atoi(w)
		if err != nil {
			t.Fatalf("seccomp child said %q", out)
		}
		res = append(res, n)
	}
	if len(res) != len(probes) {
		t.Fatalf("seccomp child answered %q for %d probes", out, len(probes))
	}
	return res, 0
}

func uintp(v uint) *uint { return &v }

// getpriority(which, who) is the probe of choice: harmless with any
// arguments, 0 for (0, 0) and EINVAL for a bad "which" when allowed.
func TestSeccompFilter(t *testing.T) {
	const deny = 71   // EPROTO: what the filters below answer, never the kernel's own
	const kernel = -1 // allowed: the kernel's own answer, as without a filter
	allow := specs.ActAllow
	tests := []struct {
		name   string
		s      specs.LinuxSeccomp
		probes []string
		want   []int
		signal syscall.Signal
	}{
		{
			name:   "deny by name, others allowed",
			s:      specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid", "no_such_call"}, Action: specs.ActErrno, ErrnoRet: uintp(deny)}}},
			probes: []string{"getppid", "getpriority:0:0", "getpriority:100:0"},
			want:   []int{deny, kernel, kernel},
		},
		{
			name:   "errno defaults to EPERM",
			s:      specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}}},
			probes: []string{"getppid"},
			want:   []int{int(unix.EPERM)},
		},
		{
			name: "equal, on both words of the argument",
			s: specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(deny),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpEqualTo}}}}},
			// which = 1<<32 has a zero low word: the kernel sees PRIO_PROCESS.
			probes: []string{"getpriority:0:0", "getpriority:0x100000000:0", "getpriority:100:0"},
			want:   []int{deny, kernel, kernel},
		},
		{
			name: "not equal",
			s: specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(deny),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpNotEqual}}}}},
			probes: []string{"getpriority:0:0", "getpriority:0x100000000:0", "getpriority:100:0"},
			want:   []int{kernel, deny, deny},
		},
		{
			name: "two arguments, both must match",
			s: specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(deny),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpEqualTo}, {Index: 1, Value: 5, Op: specs.OpEqualTo}}}}},
			probes: []string{"getpriority:0:0", "getpriority:0:5", "getpriority:1:5"},
			want:   []int{kernel, deny, kernel},
		},
		{
			name: "masked equal (Docker's clone rule)",
			s: specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(deny),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xff00, ValueTwo: 0x0100, Op: specs.OpMaskedEqual}}}}},
			probes: []string{"getpriority:0x1ff:0", "getpriority:0x1:0", "getpriority:0x200:0"},
			want:   []int{deny, kernel, kernel},
		},
		{
			name: "greater than, across the word boundary",
			s: specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(deny),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpGreaterThan}}}}},
			probes: []string{"getpriority:0xffffffff:0", "getpriority:0x100000000:0", "getpriority:2:0"},
			want:   []int{kernel, deny, kernel},
		},
		{
			name: "greater or equal, less than, less or equal",
			s: specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(deny), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 50, Op: specs.OpGreaterEqual}}},
				{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(deny + 1), Args: []specs.LinuxSeccompArg{{Index: 1, Value: 3, Op: specs.OpLessThan}, {Index: 1, Value: 1, Op: specs.OpGreaterThan}}},
				{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(deny + 2), Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0x100000000, Op: specs.OpLessEqual}, {Index: 1, Value: 0xffffffff, Op: specs.OpGreaterThan}}},
			}},
			probes: []string{"getpriority:50:0", "getpriority:49:0", "getpriority:0:2", "getpriority:0:3", "getpriority:0:0x100000000", "getpriority:0:0x100000001"},
			want:   []int{deny, kernel, deny + 1, kernel, deny + 2, kernel},
		},
		{
			name: "first matching rule wins, unconditional rule ends the list",
			s: specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getpriority"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpEqualTo}}},
				{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uintp(deny)},
			}},
			probes: []string{"getpriority:0:0", "getpriority:1:0"},
			want:   []int{kernel, deny},
		},
		{
			name:   "kill the process",
			s:      specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}}},
			probes: []string{"getpriority:0:0", "getppid"},
			signal: syscall.SIGSYS,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, sig := underFilter(t, &tt.s, tt.probes)
			base, _ := underFilter(t, &specs.LinuxSeccomp{DefaultAction: allow}, tt.probes)
			for i, w := range tt.want {
				if w == kernel {
					tt.want[i] = base[i]
				}
			}
			if sig != tt.signal {
				t.Fatalf("child killed by %v, want %v", sig, tt.signal)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) && tt.signal == 0 {
				t.Errorf("errnos %v, want %v (probes %v)", got, tt.want, tt.probes)
			}
		})
	}
}

// An allowlist: every system call of the table allowed but two, the default
// action answering the rest (here: the two left out).
func TestSeccompAllowlistDefaultAction(t *testing.T) {
	if len(seccompArches) == 0 {
		t.Skip("no syscall table for " + goruntime.GOARCH)
	}
	var names []string
	for _, sc := range seccompArches[0].syscalls {
		if sc.name != "getppid" && sc.name != "getpriority" {
			names = append(names, sc.name)
		}
	}
	s := specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(72),
		Architectures: []specs.Arch{seccompArches[0].name},
		Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}}
	got, sig := underFilter(t, &s, []string{"getppid", "getpriority:0:0", "getpid"})
	if sig != 0 || fmt.Sprint(got[:2]) != "[72 72]" || got[2] != 0 {
		t.Errorf("got %v (signal %v), want [72 72 0]", got, sig)
	}
}

// Docker's default profile, as nook's engine puts it in the spec, with
// its EPERM made distinctive so that the filter's answer cannot be
// mistaken for the kernel's.
func TestSeccompDockerDefault(t *testing.T) {
	s, err := mobyseccomp.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: DefaultCapabilities}}})
	if err != nil {
		t.Fatal(err)
	}
	s.DefaultErrnoRet = uintp(71)
	p, err := CompileSeccomp(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Docker's default profile: %d BPF instructions", len(p.Insns))
	probes := []string{
		"getppid",                          // allowed
		"personality:0xffffffff",           // allowed: a query
		"personality:0x0040000",            // ADDR_NO_RANDOMIZE: denied
		"mount:0:0:0:0:0",                  // needs CAP_SYS_ADMIN: denied
		"open_by_handle_at:0xffffffff:0:0", // needs CAP_DAC_READ_SEARCH: denied
		"keyctl:0:0",                       // denied
		"clone:0x10000200",                 // CLONE_NEWUSER|CLONE_FS: denied by the mask (allowed, EINVAL)
		"clone3:0:0",                       // ENOSYS, for glibc to fall back to clone
		"ptrace:0xffffffff",                // allowed on kernels >= 4.8 (PTRACE_* bad request: EIO/ESRCH)
		"unshare:0x10000000",               // needs CAP_SYS_ADMIN: denied
	}
	got, sig := underFilter(t, s, probes)
	if sig != 0 {
		t.Fatalf("child killed by %v", sig)
	}
	want := map[int]int{0: 0, 1: 0, 2: 71, 3: 71, 4: 71, 5: 71, 6: 71, 7: int(unix.ENOSYS), 9: 71}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("%s: errno %d, want %d", probes[i], got[i], w)
		}
	}
	if got[8] == 71 {
		t.Errorf("ptrace denied by the filter, want allowed (kernel >= 4.8)")
	}
}

func TestSeccompCompileErrors(t *testing.T) {
	if len(seccompArches) == 0 {
		t.Skip("no syscall table for " + goruntime.GOARCH)
	}
	for _, s := range []specs.LinuxSeccomp{
		{DefaultAction: "SCMP_ACT_FLY"},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}}},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ABOUT"}}}}},
		{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FLY"}},
		{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock"},
	} {
		if _, err := CompileSeccomp(&s); err == nil {
			t.Errorf("CompileSeccomp(%+v) succeeded, want an error", s)
		}
	}
	// An architecture the build has no table for is skipped; the native one
	// is always there.
	p, err := CompileSeccomp(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchS390X}})
	if err != nil || p.Insns[1].K != seccompArches[0].audit {
		t.Errorf("native architecture missing: %v", err)
	}
	if last := p.Insns[len(p.Insns)-1]; last.K != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("an unknown architecture gets %#x, want KILL_PROCESS", last.K)
	}
}

// BenchmarkSeccompDockerDefault is the init's share of seccomp on the start
// path: decoding Docker's profile from config.json and compiling it.
func BenchmarkSeccompDockerDefault(b *testing.B) {
	s, err := mobyseccomp.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: DefaultCapabilities}}})
	if err != nil {
		b.Fatal(err)
	}
	js, _ := json.Marshal(s)
	b.ReportMetric(float64(len(js)), "json-bytes")
	for b.Loop() {
		var d specs.LinuxSeccomp
		if err := json.Unmarshal(js, &d); err != nil {
			b.Fatal(err)
		}
		if _, err := CompileSeccomp(&d); err != nil {
			b.Fatal(err)
		}
	}
}
