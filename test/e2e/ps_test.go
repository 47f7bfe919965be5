package e2e

import (
	"strings"
	"testing"
	"time"
)

// `nook ps` filters (-f KEY=VALUE, as Docker's), -n, -l and -s, and `container prune --filter`,
// on a store of its own, so that the listings hold only this test's containers.
func TestPsFilters(t *testing.T) {
	s := newStore(t, "psf", storeOptions{}, false)
	// Created in this order, a second apart at least in their creation times' order.
	runDetached(t, s, "--name", "a", "--network", "none", "--label", "tier=front", "-l", "x", "demo", "sleep", "1000")
	b := strings.TrimSpace(s.mustNook(t, "create", "--name", "b", "--label", "tier=back", "demo", "true").Stdout)
	c := s.nook(t, "run", "--name", "c", "--network", "none", "demo", "sh", "-c", "exit 3")
	assertExit(t, c, 3)
	s.mustNook(t, "run", "--name", "d", "-v", "vol1:/data", "--mount", "type=tmpfs,target=/scratch", "demo", "true")
	cID := strings.TrimSpace(s.mustNook(t, "inspect", "--format", "{{.Id}}", "c").Stdout)
	imageID := strings.TrimSpace(s.mustNook(t, "image", "inspect", "--format", "{{.Id}}", "demo").Stdout)
	imageID = strings.TrimPrefix(imageID, "sha256:")

	names := func(args ...string) string {
		t.Helper()
		r := s.mustNook(t, append(append([]string{"ps"}, args...), "--format", "{{.Names}}")...)
		return strings.Join(r.Lines(), " ")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "a"},
		{[]string{"-a"}, "d c b a"},
		{[]string{"-f", "status=running"}, "a"},
		{[]string{"-f", "status=exited"}, "d c"}, // a status filter lists every state, as Docker's
		{[]string{"--filter", "status=exited", "--filter", "status=created"}, "d c b"},
		{[]string{"-f", "status=paused"}, ""},
		{[]string{"-a", "-f", "exited=3"}, "c"},
		{[]string{"-a", "-f", "exited=0"}, "d"},
		{[]string{"-a", "-f", "name=^a$"}, "a"},
		{[]string{"-a", "-f", "name=b", "-f", "name=c"}, "c b"},
		{[]string{"-a", "-f", "id=" + cID[:10]}, "c"},
		{[]string{"-a", "-f", "label=tier"}, "b a"},
		{[]string{"-a", "-f", "label=tier=front"}, "a"},
		{[]string{"-a", "-f", "label=tier", "-f", "label=x"}, "a"},
		{[]string{"-a", "-f", "label!=tier"}, "d c"},
		{[]string{"-a", "-f", "ancestor=demo"}, "d c b a"},
		{[]string{"-a", "-f", "ancestor=demo:latest"}, "d c b a"},
		{[]string{"-a", "-f", "ancestor=" + imageID[:12]}, "d c b a"},
		{[]string{"-a", "-f", "ancestor=nosuchimage"}, ""},
		{[]string{"-a", "-f", "before=c"}, "b a"},
		{[]string{"-a", "-f", "since=b"}, "d c"},
		{[]string{"-a", "-f", "since=a", "-f", "before=d"}, "c b"},
		{[]string{"-a", "-f", "volume=vol1"}, "d"},
		{[]string{"-a", "-f", "volume=/data"}, "d"},
		{[]string{"-a", "-f", "volume=/scratch"}, "d"},
		{[]string{"-a", "-f", "network=none"}, "c a"},
		{[]string{"-f", "status=running", "-f", "name=b"}, ""}, // different keys: AND
		{[]string{"-n", "2"}, "d c"},
		{[]string{"--last", "3", "-f", "label=tier"}, "b a"},
		{[]string{"-l"}, "d"},
		{[]string{"--latest", "-f", "status=running"}, "a"},
	} {
		assertEqual(t, "nook ps "+strings.Join(tc.args, " "), names(tc.args...), tc.want)
	}
	dID := strings.TrimSpace(s.mustNook(t, "inspect", "--format", "{{.Id}}", "d").Stdout)
	assertEqual(t, "nook ps -l -q", s.mustNook(t, "ps", "-l", "-q").Stdout, dID[:12]+"\n")
	assertEqual(t, "nook ps -a -q -f label=tier=back", s.mustNook(t, "ps", "-a", "-q", "-f", "label=tier=back").Stdout, b[:12]+"\n")
	assertEqual(t, "Label in a template", strings.TrimSpace(s.mustNook(t, "ps", "-f", "name=^a$", "--format", `{{.Label "tier"}} {{.Labels}}`).Stdout), "front tier=front,x=")
	assertEqual(t, "inspect's labels", strings.TrimSpace(s.mustNook(t, "inspect", "--format", "{{json .Config.Labels}}", "a").Stdout), `{"tier":"front","x":""}`)

	// -s: the container's own layer, and with its image.
	s.mustNook(t, "run", "--name", "e", "--network", "none", "demo", "sh", "-c", "head -c 300000 /dev/zero > /big")
	r := s.mustNook(t, "ps", "-a", "-s", "-f", "name=^e$")
	lines := r.Lines()
	if len(lines) != 2 || !strings.HasSuffix(strings.TrimSpace(strings.Fields(lines[0])[len(strings.Fields(lines[0]))-1]), "SIZE") {
		t.Fatalf("nook ps -s: %q, want a header with SIZE and one row", r.Stdout)
	}
	assertMatch(t, "ps -s SIZE", lines[1], `\s3\d\d(\.\d+)?kB \(virtual \d+(\.\d+)?MB\)$`)

	// Bad filters: exit 125, one line saying what to use.
	for _, bad := range [][]string{{"-f", "bogus=1"}, {"-f", "status=stopped"}, {"-f", "status"}, {"-f", "before=nosuch"}, {"-f", "exited=x"}} {
		r := s.nook(t, append([]string{"ps"}, bad...)...)
		assertExit(t, r, 125)
		if n := strings.Count(strings.TrimSpace(r.Stderr), "\n"); n != 0 || !strings.HasPrefix(r.Stderr, "Error: ") {
			t.Errorf("nook ps %v: stderr %q, want one Error: line", bad, r.Stderr)
		}
	}

	// container prune --filter: only what the filter names, never a running container.
	r = s.mustNook(t, "container", "prune", "-f", "--filter", "until=1h")
	assertEqual(t, "prune until=1h (all are newer)", r.Stdout, "")
	r = s.mustNook(t, "container", "prune", "-f", "--filter", "label=tier")
	assertContains(t, "prune label=tier", r.Stdout, b)
	assertEqual(t, "containers after prune label=tier", names("-a"), "e d c a")
	time.Sleep(1100 * time.Millisecond)
	r = s.mustNook(t, "container", "prune", "-f", "--filter", "until="+time.Now().UTC().Format(time.RFC3339), "--filter", "label!=tier")
	assertContains(t, "prune until=now label!=tier", r.Stdout, cID)
	assertEqual(t, "containers after prune until=now", names("-a"), "a")
	r = s.nook(t, "container", "prune", "-f", "--filter", "status=exited")
	assertExit(t, r, 125)
	s.mustNook(t, "rm", "-f", "a")
}
