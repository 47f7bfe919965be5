package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The run/create flags of Docker that shape a container's /etc files, its stop, its groups,
// /dev/shm and sysctls: each is seen inside the container, in `nook inspect`, and again after
// `nook start` of the created or stopped container.

// inspectDoc is `nook inspect`'s document of one container.
func inspectDoc(t *testing.T, s *store, ref string) map[string]any {
	t.Helper()
	var docs []map[string]any
	if err := json.Unmarshal([]byte(s.mustNook(t, "inspect", ref).Stdout), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("nook inspect %s: not one JSON document: %v", ref, err)
	}
	return docs[0]
}

// field is doc[section][key], printed as JSON for comparison.
func field(doc map[string]any, section, key string) string {
	sec, _ := doc[section].(map[string]any)
	b, _ := json.Marshal(sec[key])
	return string(b)
}

// createStartLog creates a container with args, starts it attached twice (created, then
// stopped), and returns each run's output: the flags must hold for both.
func createStartLog(t *testing.T, s *store, name string, args ...string) (string, string) {
	t.Helper()
	s.mustNook(t, append([]string{"create", "--name", name}, args...)...)
	t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
	first := s.mustNook(t, "start", "-a", name).Stdout
	second := s.mustNook(t, "start", "-a", name).Stdout
	return first, second
}

func TestRunAddHost(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, "cat /etc/hosts", "--add-host", "db:192.0.2.10", "--add-host", "v6:::1", "--add-host", "eq=192.0.2.11", "--add-host", "gw:host-gateway")
	lines := strings.Split(out, "\n")
	if len(lines) < 3 || lines[0] != "127.0.0.1\tlocalhost" {
		t.Fatalf("/etc/hosts does not start with the localhost lines:\n%s", out)
	}
	// Docker's place: after the localhost lines, before the container's own name.
	assertEqual(t, "the --add-host lines, after localhost's", strings.Join(lines[2:5], "\n"), "192.0.2.10\tdb\n::1\tv6\n192.0.2.11\teq")
	assertMatch(t, "host-gateway's line", lines[5], `^\d+\.\d+\.\d+\.\d+\tgw$`)
	if strings.HasPrefix(lines[5], "127.") || strings.HasPrefix(lines[5], "10.0.2.2\t") {
		t.Errorf("host-gateway without allow_host_loopback is the host's own address, got %q", lines[5])
	}
	// The container's resolver reads it: busybox's ping resolves through /etc/hosts.
	r := s.nook(t, "run", "--rm", "--network", "none", "--add-host", "db.example:192.0.2.10", "demo", "sh", "-c", "ping -c1 -W1 db.example 2>&1; true")
	assertContains(t, "ping of an --add-host name", r.Stdout, "192.0.2.10")

	if slirpUnusable() == "" {
		out = s.sh(t, "grep gw /etc/hosts", "--network", "slirp4netns:allow_host_loopback=true", "--add-host", "gw:host-gateway")
		assertEqual(t, "host-gateway with allow_host_loopback", out, "10.0.2.2\tgw\n")
	}
	out = s.sh(t, "tail -n 1 /etc/hosts", "--network", "host", "--add-host", "gw:host-gateway")
	assertEqual(t, "host-gateway with --network host", out, "127.0.0.1\tgw\n")

	for _, c := range []struct{ flag, words string }{
		{"nocolon", "bad format for add-host"},
		{":192.0.2.1", "bad format for add-host"},
		{"db:not-an-ip", "invalid IP address in add-host"},
	} {
		r := s.nook(t, "run", "--rm", "--add-host", c.flag, "demo", "true")
		assertExit(t, r, 125)
		assertErrorLine(t, r, c.words)
	}

	// Kept in the record: inspect shows them, and a start of the created or stopped container
	// writes them again.
	name := "ah" + strconv.Itoa(os.Getpid())
	first, second := createStartLog(t, s, name, "--add-host", "db:192.0.2.10", "demo", "grep", "db", "/etc/hosts")
	assertEqual(t, "start of the created container", first, "192.0.2.10\tdb\n")
	assertEqual(t, "start of the stopped container", second, "192.0.2.10\tdb\n")
	assertEqual(t, "HostConfig.ExtraHosts", field(inspectDoc(t, s, name), "HostConfig", "ExtraHosts"), `["db:192.0.2.10"]`)
}

func TestRunAddHostUserNetwork(t *testing.T) {
	s := useMain(t)
	net := "ahnet" + strconv.Itoa(os.Getpid())
	s.mustNook(t, "network", "create", net)
	t.Cleanup(func() { s.nook(t, "network", "rm", "-f", net) })
	out := s.sh(t, "cat /etc/hosts", "--network", net, "--name", net+"-c", "--add-host", "db:192.0.2.10")
	assertContains(t, "/etc/hosts on a user network", out, "192.0.2.10\tdb\n")
	assertContains(t, "/etc/hosts on a user network", out, "\t"+net+"-c")
}

func TestRunDNS(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, "cat /etc/resolv.conf", "--dns", "192.0.2.53", "--dns", "2001:db8::53", "--dns-search", "example.com",
		"--dns-search", "corp.example", "--dns-option", "ndots:2", "--dns-option", "timeout:1")
	assertEqual(t, "resolv.conf with every --dns flag", out,
		"search example.com corp.example\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2 timeout:1\n")

	// Each flag replaces its own part: --dns-search alone keeps the network's name servers.
	plain := s.sh(t, "grep ^nameserver /etc/resolv.conf")
	out = s.sh(t, "cat /etc/resolv.conf", "--dns-search", "example.com")
	assertContains(t, "resolv.conf with --dns-search", out, "search example.com\n")
	assertContains(t, "resolv.conf with --dns-search keeps the name servers", out, plain)
	if slirpUnusable() == "" {
		assertEqual(t, "slirp4netns' name server without --dns", plain, "nameserver 10.0.2.3\n")
	}
	out = s.sh(t, "cat /etc/resolv.conf", "--dns-search", ".")
	assertNotContains(t, "resolv.conf with --dns-search .", out, "search")
	for _, nw := range []string{"none", "host"} {
		out = s.sh(t, "grep ^nameserver /etc/resolv.conf", "--network", nw, "--dns", "192.0.2.53")
		assertEqual(t, "--dns with --network "+nw, out, "nameserver 192.0.2.53\n")
	}

	for _, c := range []struct{ flag, value, words string }{
		{"--dns", "not-an-ip", "not an ip address"},
		{"--dns-search", "-bad-", "not a valid domain"},
	} {
		r := s.nook(t, "run", "--rm", c.flag, c.value, "demo", "true")
		assertExit(t, r, 125)
		assertErrorLine(t, r, c.words)
	}

	name := "dns" + strconv.Itoa(os.Getpid())
	first, second := createStartLog(t, s, name, "--dns", "192.0.2.53", "--dns-search", "example.com", "--dns-option", "ndots:3", "demo", "cat", "/etc/resolv.conf")
	want := "search example.com\nnameserver 192.0.2.53\noptions ndots:3\n"
	assertEqual(t, "resolv.conf at start of the created container", first, want)
	assertEqual(t, "resolv.conf at start of the stopped container", second, want)
	d := inspectDoc(t, s, name)
	assertEqual(t, "HostConfig.Dns", field(d, "HostConfig", "Dns"), `["192.0.2.53"]`)
	assertEqual(t, "HostConfig.DnsSearch", field(d, "HostConfig", "DnsSearch"), `["example.com"]`)
	assertEqual(t, "HostConfig.DnsOptions", field(d, "HostConfig", "DnsOptions"), `["ndots:3"]`)
}

func TestRunStopSignalAndTimeout(t *testing.T) {
	s := useMain(t)
	name := "ss" + strconv.Itoa(os.Getpid())
	// USR1 is noted and ignored, TERM ignored: only the SIGKILL after --stop-timeout ends it.
	runDetached(t, s, "--name", name, "--stop-signal", "SIGUSR1", "--stop-timeout", "2", "demo", "sh", "-c",
		`trap 'echo got-usr1' USR1; trap '' TERM; echo ready; while :; do sleep 0.1; done`)
	d := inspectDoc(t, s, name)
	assertEqual(t, "Config.StopSignal", field(d, "Config", "StopSignal"), `"SIGUSR1"`)
	assertEqual(t, "Config.StopTimeout", field(d, "Config", "StopTimeout"), `2`)
	for round := 1; round <= 2; round++ {
		waitReady(t, s, name, round)
		start := time.Now()
		s.mustNook(t, "stop", name) // no -t: the container's --stop-timeout
		if d := time.Since(start); d < 2*time.Second || d > 7*time.Second {
			t.Errorf("round %d: nook stop of a container with --stop-timeout 2 took %v, want about 2s", round, d)
		}
		assertMatch(t, "STATUS after the stop", psStatus(t, s, name), `^Exited \(137\) `)
		assertEqual(t, "stop signals received", strings.Count(s.mustNook(t, "logs", name).Stdout, "got-usr1"), round)
		if round == 1 {
			s.mustNook(t, "start", name) // the record keeps both
		}
	}
	// -t still wins over --stop-timeout.
	s.mustNook(t, "start", name)
	waitReady(t, s, name, 3)
	start := time.Now()
	s.mustNook(t, "stop", "-t", "0", name)
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("nook stop -t 0 took %v: -t must override --stop-timeout", d)
	}

	r := s.nook(t, "run", "--rm", "--stop-signal", "NOPE", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "invalid signal", "NOPE")
	r = s.nook(t, "run", "--rm", "--stop-timeout", "soon", "demo", "true")
	assertExit(t, r, 125)
}

// waitReady waits until the container's log has n lines "ready".
func waitReady(t *testing.T, s *store, name string, n int) {
	t.Helper()
	logs := ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if logs = s.mustNook(t, "logs", name).Stdout; strings.Count(logs, "ready\n") >= n {
			return
		}
	}
	t.Fatalf("nook logs %s never showed %d lines \"ready\"; got:\n%s", name, n, logs)
}

func TestRunCidfile(t *testing.T) {
	s := useMain(t)
	dir := t.TempDir()
	cid := filepath.Join(dir, "ctr.id")
	id := runDetached(t, s, "--cidfile", cid, "demo", "sleep", "60")
	b, err := os.ReadFile(cid)
	if err != nil {
		t.Fatalf("--cidfile: %v", err)
	}
	assertEqual(t, "the ID file's content", string(b), id)
	assertEqual(t, "HostConfig.ContainerIDFile", field(inspectDoc(t, s, id), "HostConfig", "ContainerIDFile"), strconv.Quote(cid))

	before := len(s.mustNook(t, "ps", "-aq").Lines())
	r := s.nook(t, "create", "--cidfile", cid, "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "Container ID file found", "make sure the other container isn't running or delete", cid)
	assertEqual(t, "containers after a refused --cidfile", len(s.mustNook(t, "ps", "-aq").Lines()), before)
	b, _ = os.ReadFile(cid)
	assertEqual(t, "the ID file after a refused --cidfile", string(b), id)

	cid2 := filepath.Join(dir, "created.id")
	r = s.mustNook(t, "create", "--cidfile", cid2, "demo", "true")
	created := strings.TrimSpace(r.Stdout)
	t.Cleanup(func() { s.nook(t, "rm", "-f", created) })
	b, _ = os.ReadFile(cid2)
	assertEqual(t, "create --cidfile", string(b), created)
}

func TestRunPullPolicy(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "runflags-pull", storeOptions{}, false)
	ref := reg.addr + "/runflags/pull:latest"
	s.mustNook(t, "tag", "demo", ref)
	s.mustNook(t, "push", "-q", ref)

	s2 := newStore(t, "runflags-pull2", storeOptions{}, true)
	r := s2.nook(t, "run", "--rm", "--pull", "never", ref, "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "no such image", ref, "--pull never")
	assertEqual(t, "images after --pull never", len(s2.mustNook(t, "images", "-q").Lines()), 0)
	r = s2.nook(t, "run", "--rm", "--pull", "sometimes", ref, "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "invalid pull option", "sometimes")

	r = s2.nook(t, "run", "--rm", "--pull", "missing", ref, "echo", "one")
	assertExit(t, r, 0)
	assertEqual(t, "run --pull missing", r.Stdout, "one\n")
	first := imageIDOf(t, s2, ref)

	// The registry's image changes; run --pull missing keeps the local one, --pull always
	// fetches the new one.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM demo\nRUN echo v2 > /version\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustNook(t, "build", "-q", "-t", ref, dir)
	s.mustNook(t, "push", "-q", ref)
	r = s2.nook(t, "run", "--rm", ref, "cat", "/version")
	assertExit(t, r, 1)
	assertEqual(t, "image ID after a run without --pull", imageIDOf(t, s2, ref), first)
	r = s2.nook(t, "run", "--rm", "--pull", "always", ref, "cat", "/version")
	assertExit(t, r, 0)
	assertContains(t, "run --pull always's progress", r.Stderr, "Copying")
	assertEqual(t, "run --pull always runs the registry's new image", r.Stdout, "v2\n")
	if imageIDOf(t, s2, ref) == first {
		t.Errorf("run --pull always did not replace the local image")
	}
	// never, with the image present, just runs it.
	assertEqual(t, "run --pull never of a local image", s2.mustNook(t, "run", "--rm", "--pull", "never", ref, "cat", "/version").Stdout, "v2\n")
}

func TestRunExpose(t *testing.T) {
	s := useMain(t)
	name := "ex" + strconv.Itoa(os.Getpid())
	s.mustNook(t, "create", "--name", name, "--expose", "8080", "--expose", "9000-9001/udp", "demo", "true")
	t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
	assertEqual(t, "Config.ExposedPorts", field(inspectDoc(t, s, name), "Config", "ExposedPorts"), `{"8080/tcp":{},"9000/udp":{},"9001/udp":{}}`)
	r := s.nook(t, "run", "--rm", "--expose", "http", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "--expose", "http")

	requireSlirp(t)
	pub := "exp" + strconv.Itoa(os.Getpid())
	runDetached(t, s, "--name", pub, "-P", "--expose", "8080", "demo", "sleep", "60")
	assertMatch(t, "nook port of -P --expose 8080", s.mustNook(t, "port", pub).Stdout, `^8080/tcp -> 0\.0\.0\.0:\d+\n`)
	assertEqual(t, "Config.ExposedPorts with -P", field(inspectDoc(t, s, pub), "Config", "ExposedPorts"), `{"8080/tcp":{}}`)
}

func TestRunGroupAdd(t *testing.T) {
	s := useMain(t)
	assertEqual(t, "id -G with --group-add", s.sh(t, "id -G", "--group-add", "user", "--group-add", "1234"), "0 1000 1234\n")
	assertEqual(t, "id -G of user with --group-add", s.sh(t, "id -G", "-u", "user", "--group-add", "nogroup"), "1000 65534\n")
	r := s.nook(t, "run", "--rm", "--group-add", "nosuchgroup", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "unable to find group nosuchgroup")

	name := "ga" + strconv.Itoa(os.Getpid())
	first, second := createStartLog(t, s, name, "--group-add", "user", "demo", "id", "-G")
	assertEqual(t, "id -G at start of the created container", first, "0 1000\n")
	assertEqual(t, "id -G at start of the stopped container", second, "0 1000\n")
	assertEqual(t, "HostConfig.GroupAdd", field(inspectDoc(t, s, name), "HostConfig", "GroupAdd"), `["user"]`)
}

// shmKB is the size of /dev/shm in KiB, as df shows it inside the container.
func shmKB(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\S+\s+(\d+)\s+\d+\s+\d+\s+\d+%\s+/dev/shm$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no /dev/shm line in df's output:\n%s", out)
	}
	return m[1]
}

func TestRunShmSize(t *testing.T) {
	s := useMain(t)
	assertEqual(t, "/dev/shm without --shm-size", shmKB(t, s.sh(t, "df -k /dev/shm")), "65536")
	assertEqual(t, "/dev/shm with --shm-size 128m", shmKB(t, s.sh(t, "df -k /dev/shm", "--shm-size", "128m")), "131072")
	for _, v := range []string{"lots", "0"} {
		r := s.nook(t, "run", "--rm", "--shm-size", v, "demo", "true")
		assertExit(t, r, 125)
		assertErrorLine(t, r, "--shm-size", "invalid size")
	}
	name := "shm" + strconv.Itoa(os.Getpid())
	first, second := createStartLog(t, s, name, "--shm-size", "1g", "demo", "df", "-k", "/dev/shm")
	assertEqual(t, "/dev/shm at start of the created container", shmKB(t, first), "1048576")
	assertEqual(t, "/dev/shm at start of the stopped container", shmKB(t, second), "1048576")
	assertEqual(t, "HostConfig.ShmSize", field(inspectDoc(t, s, name), "HostConfig", "ShmSize"), fmt.Sprint(1<<30))
}

func TestRunSysctl(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/msgmax",
		"--network", "none", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80", "--sysctl", "kernel.msgmax=4096")
	assertEqual(t, "sysctls inside the container", out, "80\n4096\n")
	// Set by the init before /proc/sys is made read-only, which it still is for the payload.
	r := s.nook(t, "run", "--rm", "--sysctl", "kernel.msgmax=4096", "demo", "sh", "-c", "echo 1 > /proc/sys/kernel/msgmax")
	if r.Code == 0 {
		t.Errorf("/proc/sys is writable in a container with --sysctl")
	}
	for _, c := range []struct {
		args  []string
		words string
	}{
		{[]string{"--sysctl", "vm.swappiness=10"}, "not allowed"},
		{[]string{"--sysctl", "kernel.hostname=x"}, "not allowed"},
		{[]string{"--network", "host", "--sysctl", "net.ipv4.ip_forward=1"}, "not allowed in host network namespace"},
		{[]string{"--sysctl", "novalue"}, "KEY=VALUE"},
	} {
		r := s.nook(t, append(append([]string{"run", "--rm"}, c.args...), "demo", "true")...)
		assertExit(t, r, 125)
		assertErrorLine(t, r, c.words)
	}
	name := "sc" + strconv.Itoa(os.Getpid())
	first, second := createStartLog(t, s, name, "--sysctl", "kernel.shm_rmid_forced=1", "demo", "cat", "/proc/sys/kernel/shm_rmid_forced")
	assertEqual(t, "sysctl at start of the created container", first, "1\n")
	assertEqual(t, "sysctl at start of the stopped container", second, "1\n")
	assertEqual(t, "HostConfig.Sysctls", field(inspectDoc(t, s, name), "HostConfig", "Sysctls"), `{"kernel.shm_rmid_forced":"1"}`)
}

func TestImagesFilter(t *testing.T) {
	s := newStore(t, "images-filter", storeOptions{}, false)
	build := func(tag, dockerfile string) {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		s.mustNook(t, "build", "-q", "-t", tag, dir)
	}
	// Creation times are the order the filters read (before, since): one image per second.
	build("app:old", "FROM demo\nLABEL tier=web team=a\nRUN echo old > /v\n")
	time.Sleep(1100 * time.Millisecond)
	build("app:v1", "FROM demo\nLABEL tier=web\nRUN echo v1 > /v\n")
	time.Sleep(1100 * time.Millisecond)
	build("app:v1", "FROM demo\nLABEL tier=db\nRUN echo v1b > /v\n") // the first app:v1 is dangling now
	s.mustNook(t, "tag", "demo", "other/tool:2")

	list := func(args ...string) string {
		t.Helper()
		r := s.mustNook(t, append([]string{"images", "--format", "{{.Repository}}:{{.Tag}}"}, args...)...)
		lines := r.Lines()
		sort.Strings(lines)
		return strings.Join(lines, " ")
	}
	assertEqual(t, "dangling=true", list("--filter", "dangling=true"), "<none>:<none>")
	assertEqual(t, "dangling=false", list("-f", "dangling=false"), "app:old app:v1 demo:latest other/tool:2")
	assertEqual(t, "reference=app", list("--filter", "reference=app"), "app:old app:v1")
	assertEqual(t, "reference=app:v*", list("--filter", "reference=app:v*"), "app:v1")
	assertEqual(t, "two references", list("--filter", "reference=other/*", "--filter", "reference=demo"), "demo:latest other/tool:2")
	assertEqual(t, "label=tier", list("--filter", "label=tier"), "<none>:<none> app:old app:v1")
	assertEqual(t, "label=tier=web", list("--filter", "label=tier=web"), "<none>:<none> app:old")
	assertEqual(t, "two labels (all must hold)", list("--filter", "label=tier=web", "--filter", "label=team"), "app:old")
	assertEqual(t, "label and dangling", list("--filter", "label=tier=web", "--filter", "dangling=false"), "app:old")
	assertEqual(t, "since=app:old", list("--filter", "since=app:old"), "<none>:<none> app:v1")
	assertEqual(t, "before=app:v1", list("--filter", "before=app:v1", "--filter", "reference=app"), "app:old")
	assertEqual(t, "nook image ls --filter", strings.TrimSpace(s.mustNook(t, "image", "ls", "-q", "--filter", "reference=app:old").Stdout), strings.TrimPrefix(imageIDOf(t, s, "app:old"), "sha256:")[:12])

	for _, c := range []struct{ filter, words string }{
		{"colour=red", "invalid filter 'colour'"},
		{"dangling=maybe", "dangling=maybe"},
		{"before=nosuchimage", "nosuchimage"},
		{"novalue", "bad format of filter"},
	} {
		r := s.nook(t, "images", "--filter", c.filter)
		assertExit(t, r, 125)
		assertErrorLine(t, r, c.words)
	}
}
