package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEscapeSeccompDefault: Docker's profile is on by default (Seccomp: 2
// in /proc/self/status) and refuses what it should (a nested user
// namespace); unconfined and --privileged have none; a custom profile
// applies as written.
func TestEscapeSeccompDefault(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; unshare -U true 2>/dev/null && echo USERNS || echo no-userns")
	assertEqual(t, "default", out, "NoNewPrivs:\t1\nSeccomp:\t2\nno-userns\n")

	out = s.sh(t, "grep '^Seccomp:' /proc/self/status; unshare -U true && echo USERNS", "--security-opt", "seccomp=unconfined")
	assertEqual(t, "unconfined", out, "Seccomp:\t0\nUSERNS\n")

	out = s.sh(t, "grep -E '^(Seccomp|CapEff):' /proc/self/status", "--privileged")
	assertEqual(t, "privileged", out, "CapEff:\t000001ffffffffff\nSeccomp:\t0\n")

	profile := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(filepath.Dir(profile), 0o755)
	out = s.sh(t, "mkdir /tmp/x 2>&1; touch /tmp/y && echo touched", "--security-opt", "seccomp="+profile)
	assertContains(t, "custom profile", out, "Permission denied")
	assertContains(t, "custom profile", out, "touched")

	r := s.nook(t, "run", "--rm", "--security-opt", "seccomp=/no/such/profile.json", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "seccomp")
}

// TestEscapeCapabilities: --cap-drop ALL --cap-add NET_BIND_SERVICE leaves
// exactly that one; names with or without CAP_; no-new-privileges=false.
func TestEscapeCapabilities(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, "grep -E '^Cap(Eff|Bnd):' /proc/self/status", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE")
	assertEqual(t, "cap-drop ALL + NET_BIND_SERVICE", out, "CapEff:\t0000000000000400\nCapBnd:\t0000000000000400\n")
	out = s.sh(t, "grep -E '^CapEff:' /proc/self/status", "--cap-drop", "CAP_CHOWN", "--cap-add", "cap_sys_ptrace")
	assertEqual(t, "cap-drop CAP_CHOWN, cap-add sys_ptrace", out, "CapEff:\t00000000a80c25fa\n")
	// Without CAP_CHOWN, chown fails even for root.
	r := s.nook(t, "run", "--rm", "--cap-drop", "chown", "demo", "sh", "-c", "touch /tmp/f; chown 1000 /tmp/f")
	if r.Code == 0 {
		t.Errorf("chown worked without CAP_CHOWN")
	}
	out = s.sh(t, "grep '^NoNewPrivs:' /proc/self/status", "--security-opt", "no-new-privileges=false")
	assertEqual(t, "no-new-privileges=false", out, "NoNewPrivs:\t0\n")
	r = s.nook(t, "run", "--rm", "--cap-add", "CAP_FLY", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "CAP_FLY")
	r = s.nook(t, "run", "--rm", "--security-opt", "apparmor=docker-default", "demo", "true")
	assertExit(t, r, 125)
	if !strings.Contains(r.Stderr, "apparmor") {
		t.Errorf("the refusal should name apparmor: %s", r.Stderr)
	}
}
