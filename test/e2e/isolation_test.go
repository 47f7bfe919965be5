package e2e

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// wantMap is /proc/self/uid_map (or gid_map) in subordinate mode, as fields.
func wantMap(t *testing.T, self int, rs []idRange) []string {
	t.Helper()
	lines := []string{fmt.Sprintf("0 %d 1", self)}
	next := 1
	for _, r := range rs {
		lines = append(lines, fmt.Sprintf("%d %d %d", next, r.start, r.count))
		next += r.count
	}
	return lines
}

// normMap turns the kernel's padded map lines into "a b c" lines.
func normMap(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, strings.Join(f, " "))
		}
	}
	return out
}

// The README's first run: id; uid_map; $$; hostname.
func TestRunBasics(t *testing.T) {
	s := useMain(t)
	requireSubIDs(t)
	out := s.sh(t, `id; echo ---; cat /proc/self/uid_map; echo ---; cat /proc/self/gid_map; echo ---; echo $$; hostname`)
	parts := strings.Split(out, "---\n")
	if len(parts) != 4 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	assertMatch(t, "id", parts[0], `^uid=0\(root\) gid=0\(root\)`)
	assertEqual(t, "uid_map", strings.Join(normMap(parts[1]), "\n"), strings.Join(wantMap(t, hostUID, subUIDs), "\n"))
	assertEqual(t, "gid_map", strings.Join(normMap(parts[2]), "\n"), strings.Join(wantMap(t, hostGID, subGIDs), "\n"))
	rest := strings.Split(strings.TrimSpace(parts[3]), "\n")
	if len(rest) != 2 {
		t.Fatalf("want $$ and hostname, got %q", parts[3])
	}
	assertEqual(t, "$$ (the command is PID 1)", rest[0], "1")
	assertMatch(t, "hostname", rest[1], `^[0-9a-f]{12}$`)
}

// A file made by uid 1000 in the container belongs to subuid_start+999 on the host.
func TestFileOwnershipMapsToSubordinateIDs(t *testing.T) {
	s := useMain(t)
	requireSubIDs(t)
	checkFileOwnership(t, s)
}

func checkFileOwnership(t *testing.T, s *store) {
	t.Helper()
	marker := fmt.Sprintf("marker-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	name := "own" + strconv.Itoa(os.Getpid())
	s.mustNook(t, "run", "--name", name, "-u", "1000:1000", "demo", "touch", "/tmp/"+marker)
	t.Cleanup(func() { s.nook(t, "rm", "-f", name) })

	var found []string
	_ = filepath.WalkDir(s.graphRoot(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == marker {
			found = append(found, p)
		}
		return nil
	})
	if len(found) == 0 {
		t.Fatalf("file /tmp/%s made in the container was not found under the graph root %s", marker, s.graphRoot())
	}
	wantUID := hostIDFor(t, subUIDs, hostUID, 1000)
	wantGID := hostIDFor(t, subGIDs, hostGID, 1000)
	for _, p := range found {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "host owner UID of "+p, int(st.Uid), wantUID)
		assertEqual(t, "host owner GID of "+p, int(st.Gid), wantGID)
	}
}

// hostMountPoints reads this process's mount points.
func hostMountPoints(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			mps = append(mps, unescapeMount(fields[4]))
		}
	}
	return mps
}

// containerMounts parses /proc/mounts text into (source, mountpoint, type, options).
func containerMounts(text string) [][4]string {
	var ms [][4]string
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 {
			ms = append(ms, [4]string{f[0], unescapeMount(f[1]), f[2], f[3]})
		}
	}
	return ms
}

// A container's own mounts: its root, /proc, /sys, /dev and the /etc files nook provides.
func containerOwnMount(mp string) bool {
	switch mp {
	case "/", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf":
		return true
	}
	for _, p := range []string{"/proc", "/sys", "/dev"} {
		if mp == p || strings.HasPrefix(mp, p+"/") {
			return true
		}
	}
	return false
}

func TestHostMountsInvisible(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, fmt.Sprintf(`cat /proc/mounts; echo ---; if test -e %q; then echo SEEN; else echo UNSEEN; fi`, baseDir))
	parts := strings.Split(out, "---\n")
	if len(parts) != 2 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	assertEqual(t, "the suite's directory "+baseDir+" seen from the container", strings.TrimSpace(parts[1]), "UNSEEN")
	inside := map[string]bool{}
	for _, m := range containerMounts(parts[0]) {
		inside[m[1]] = true
		if !containerOwnMount(m[1]) {
			t.Errorf("container mount table has %s on %s (type %s), which is not one of the container's own", m[0], m[1], m[2])
		}
		for _, p := range []string{baseDir, "/work", "/home"} {
			if m[1] == p || strings.HasPrefix(m[1], p+"/") {
				t.Errorf("host path %s is mounted in the container: %v", p, m)
			}
		}
	}
	checked := 0
	for _, mp := range hostMountPoints(t) {
		if containerOwnMount(mp) {
			continue
		}
		checked++
		if inside[mp] {
			t.Errorf("host mount point %s is visible in the container", mp)
		}
	}
	t.Logf("%d host mount points outside /, /proc, /sys and /dev compared", checked)
}

func TestHostProcessesInvisible(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, `for p in /proc/[0-9]*; do echo "${p#/proc/} $(cat $p/comm 2>/dev/null)"; done; echo ---; ps`)
	parts := strings.Split(out, "---\n")
	if len(parts) != 2 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	pids := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(parts[0]), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		pids[f[0]] = true
		n, _ := strconv.Atoi(f[0])
		if n > 10 {
			t.Errorf("/proc in the container lists pid %s (%v): not the container's own", f[0], f[1:])
		}
	}
	if !pids["1"] {
		t.Errorf("/proc in the container has no pid 1: %q", parts[0])
	}
	// busybox ps: header plus the shell and ps itself.
	psLines := strings.Split(strings.TrimSpace(parts[1]), "\n")
	if len(psLines) > 4 {
		t.Errorf("ps in the container lists %d processes, want only the container's (sh, ps):\n%s", len(psLines)-1, parts[1])
	}
	assertNotContains(t, "ps in the container", parts[1], "e2e.test")
}

// Each namespace differs from the host's, except the network namespace with --network host.
func TestNamespaces(t *testing.T) {
	s := useMain(t)
	nss := []string{"user", "mnt", "pid", "uts", "ipc", "net"}
	host := map[string]string{}
	for _, ns := range nss {
		l, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		host[ns] = l
	}
	script := ""
	for _, ns := range nss {
		script += "readlink /proc/self/ns/" + ns + "; "
	}
	for _, network := range []string{"none", "host"} {
		got := strings.Fields(s.sh(t, script, "--network", network))
		if len(got) != len(nss) {
			t.Fatalf("--network %s: namespace links: %q", network, got)
		}
		for i, ns := range nss {
			same := got[i] == host[ns]
			if ns == "net" && network == "host" {
				if !same {
					t.Errorf("--network host: the container's net namespace %s differs from the host's %s", got[i], host[ns])
				}
				continue
			}
			if same {
				t.Errorf("--network %s: the container shares the host's %s namespace (%s)", network, ns, got[i])
			}
		}
	}
}

func TestNetworkNoneHasOnlyLoopback(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '`, "--network", "none")
	assertEqual(t, "interfaces with --network none", strings.TrimSpace(out), "lo")
	// The default is slirp4netns where it works (TestNetworkDefaultSlirp4netns), else none.
	want := "lo\ntap0"
	if slirpUnusable() != "" {
		want = "lo"
	}
	out = s.sh(t, `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '`)
	assertEqual(t, "interfaces with the default network", strings.TrimSpace(out), want)
}

func TestOwnHostname(t *testing.T) {
	s := useMain(t)
	hostHost, _ := os.Hostname()
	name := "hn" + strconv.Itoa(os.Getpid())
	r := s.mustNook(t, "run", "--name", name, "demo", "sh", "-c", `hostname; cat /etc/hostname; grep -c "$(hostname)" /etc/hosts`)
	t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
	lines := r.Lines()
	if len(lines) != 3 {
		t.Fatalf("unexpected output %q", r.Stdout)
	}
	assertMatch(t, "hostname", lines[0], `^[0-9a-f]{12}$`)
	if lines[0] == hostHost {
		t.Errorf("the container has the host's hostname %q", hostHost)
	}
	assertEqual(t, "/etc/hostname", lines[1], lines[0])
	if lines[2] == "0" {
		t.Errorf("/etc/hosts does not mention the hostname %s", lines[0])
	}
	// The hostname is the container's short ID.
	ps := s.mustNook(t, "ps", "-a").Stdout
	found := false
	for _, l := range strings.Split(ps, "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), name) {
			found = true
			assertEqual(t, "CONTAINER ID of "+name, strings.Fields(l)[0], lines[0])
		}
	}
	if !found {
		t.Errorf("nook ps -a does not list %s:\n%s", name, ps)
	}

	for _, flag := range []string{"--hostname", "-h"} {
		out := s.sh(t, `hostname; cat /etc/hostname; grep -q box1 /etc/hosts && echo in-hosts`, flag, "box1")
		assertEqual(t, flag+" box1", out, "box1\nbox1\nin-hosts\n")
	}
}

func TestEtcFiles(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, `for f in /etc/hosts /etc/hostname /etc/resolv.conf; do test -f $f && echo "$f ok"; done; grep -E "^127\.0\.0\.1[[:space:]].*localhost" /etc/hosts >/dev/null && echo localhost ok`)
	assertEqual(t, "provided /etc files", out, "/etc/hosts ok\n/etc/hostname ok\n/etc/resolv.conf ok\nlocalhost ok\n")
}

func TestDev(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, `for d in null zero full random urandom tty ptmx; do test -c /dev/$d && echo "$d c"; done
for d in pts shm; do test -d /dev/$d && echo "$d d"; done
echo x > /dev/null && echo null-write ok
head -c 16 /dev/urandom | wc -c
head -c 8 /dev/zero | od -An -tx1 | tr -d ' \n'; echo
if { echo x > /dev/full; } 2>/dev/null; then echo full-write ok; else echo full-write fails; fi
touch /dev/shm/x && echo shm ok`)
	want := "null c\nzero c\nfull c\nrandom c\nurandom c\ntty c\nptmx c\npts d\nshm d\nnull-write ok\n16\n0000000000000000\nfull-write fails\nshm ok\n"
	assertEqual(t, "/dev", out, want)
	// Minimal: no host disks or other devices.
	ls := strings.Fields(s.sh(t, `ls /dev`))
	allowed := map[string]bool{"null": true, "zero": true, "full": true, "random": true, "urandom": true, "tty": true,
		"ptmx": true, "pts": true, "shm": true, "mqueue": true, "fd": true, "stdin": true, "stdout": true, "stderr": true, "core": true, "console": true}
	for _, d := range ls {
		if !allowed[d] {
			t.Errorf("/dev in the container has %s, which is not in a minimal /dev", d)
		}
	}
}

func TestSysReadOnly(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, `if touch /sys/nook-probe 2>/dev/null; then echo writable; else echo ro; fi
if { echo 1 > /sys/kernel/mm/ksm/run; } 2>/dev/null; then echo writable; else echo ro; fi
grep " /sys " /proc/mounts`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 {
		t.Fatalf("unexpected output %q (is /sys mounted?)", out)
	}
	assertEqual(t, "touch /sys/nook-probe", lines[0], "ro")
	assertEqual(t, "write to /sys/kernel/mm/ksm/run", lines[1], "ro")
	m := containerMounts(lines[len(lines)-1])
	if len(m) != 1 || !hasOpt(m[0][3], "ro") {
		t.Errorf("/sys is not mounted read-only: %q", lines[len(lines)-1])
	}
}

func hasOpt(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

// Docker's masked paths are empty in the container; its read-only /proc paths are read-only mounts.
func TestMaskedAndReadOnlyPaths(t *testing.T) {
	s := useMain(t)
	masked := []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/acpi",
		"/proc/scsi", "/sys/firmware", "/proc/latency_stats", "/proc/timer_stats"}
	readonly := []string{"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	script := `for p in "$@"; do
  if [ -d "$p" ]; then echo "$p dir $(ls -A "$p" | wc -l)";
  elif [ -e "$p" ]; then echo "$p file $(cat "$p" 2>/dev/null | wc -c)";
  else echo "$p absent"; fi
done; echo ---; cat /proc/mounts`
	args := append([]string{"run", "--rm", "demo", "sh", "-c", script, "sh"}, masked...)
	out := s.mustNook(t, args...).Stdout
	parts := strings.Split(out, "---\n")
	if len(parts) != 2 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	checked := 0
	for _, l := range strings.Split(strings.TrimSpace(parts[0]), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[2] != "0" {
			t.Errorf("masked path %s is not masked: %s has %s entries/bytes", f[0], f[1], f[2])
		}
		if len(f) == 3 {
			checked++
		}
	}
	t.Logf("%d masked paths exist in the container and were checked", checked)
	mounts := containerMounts(parts[1])
	for _, p := range readonly {
		if _, err := os.Stat(p); err != nil {
			t.Logf("%s does not exist on this host; not checked", p)
			continue
		}
		var found [4]string
		for _, m := range mounts {
			if m[1] == p {
				found = m
			}
		}
		if found[1] == "" {
			t.Errorf("%s is not a separate read-only mount in the container", p)
		} else if !hasOpt(found[3], "ro") {
			t.Errorf("%s is mounted read-write in the container: %v", p, found)
		}
	}
}

var statusRe = regexp.MustCompile(`(?m)^(CapEff|CapBnd|CapPrm|NoNewPrivs):\s*(\S+)$`)

func procStatus(out string) map[string]string {
	m := map[string]string{}
	for _, x := range statusRe.FindAllStringSubmatch(out, -1) {
		m[x[1]] = x[2]
	}
	return m
}

// Docker's default capability set and no_new_privs.
func TestCapabilitiesAndNoNewPrivs(t *testing.T) {
	s := useMain(t)
	const dockerCaps = "00000000a80425fb"
	st := procStatus(s.sh(t, `cat /proc/self/status`))
	assertEqual(t, "CapEff of root in the container", st["CapEff"], dockerCaps)
	assertEqual(t, "CapPrm of root in the container", st["CapPrm"], dockerCaps)
	assertEqual(t, "CapBnd in the container", st["CapBnd"], dockerCaps)
	assertEqual(t, "NoNewPrivs", st["NoNewPrivs"], "1")
	st = procStatus(s.sh(t, `cat /proc/self/status`, "-u", "1000"))
	assertEqual(t, "CapEff of uid 1000 in the container", st["CapEff"], "0000000000000000")
	assertEqual(t, "NoNewPrivs of uid 1000", st["NoNewPrivs"], "1")
}
