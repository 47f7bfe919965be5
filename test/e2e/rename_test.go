package e2e

import (
	"strings"
	"testing"
	"time"
)

// allNames are the NAMES column of `nook ps -a`, one per container.
func allNames(t *testing.T, s *store) []string {
	t.Helper()
	return s.mustNook(t, "ps", "-a", "--format", "{{.Names}}").Lines()
}

func hasName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// `nook rename` of a created, a running and a stopped container: every command finds it by the
// new name only, the old name is free for a new container, and a name in use or an invalid one
// is refused with one line and exit 125, changing nothing.
func TestRename(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "rename", storeOptions{}, false)

	// Created, never started.
	created := strings.TrimSpace(s.mustNook(t, "create", "--name", "first", "demo", "echo", "hello-from-renamed").Stdout)
	s.mustNook(t, "rename", "first", "second")
	names := allNames(t, s)
	if !hasName(names, "second") || hasName(names, "first") {
		t.Errorf("after rename first second, ps -a names %v: want second and not first", names)
	}
	assertEqual(t, "inspect's ID of the new name", strings.TrimSpace(s.mustNook(t, "inspect", "--format", "{{.Id}}", "second").Stdout), created)
	if got := strings.TrimSpace(s.mustNook(t, "inspect", "--format", "{{.Name}}", "second").Stdout); strings.TrimPrefix(got, "/") != "second" {
		t.Errorf("inspect --format {{.Name}} second = %q, want second", got)
	}
	if r := s.nook(t, "inspect", "first"); r.Code == 0 {
		t.Errorf("inspect by the old name still finds a container:\n%s", r)
	}
	assertEqual(t, "start -a by the new name", s.mustNook(t, "start", "-a", "second").Stdout, "hello-from-renamed\n")
	assertEqual(t, "logs by the new name", s.mustNook(t, "logs", "second").Stdout, "hello-from-renamed\n")
	// The old name is free: a new container takes it, and it is another container.
	other := strings.TrimSpace(s.mustNook(t, "create", "--name", "first", "demo", "true").Stdout)
	if other == created {
		t.Fatalf("create --name first gave the renamed container's ID")
	}
	s.mustNook(t, "rm", "first")

	// Running: exec, logs and stop by the new name; its monitor still serves it.
	id := runDetached(t, s, "--name", "busy", "demo", "sh", "-c", "echo started; trap 'exit 3' TERM; while :; do sleep 0.1; done")
	waitLog(t, s, "busy", "started", 10*time.Second)
	s.mustNook(t, "container", "rename", "busy", "busier")
	assertEqual(t, "exec by the new name", s.mustNook(t, "exec", "busier", "echo", "inside").Stdout, "inside\n")
	if r := s.nook(t, "exec", "busy", "true"); r.Code == 0 {
		t.Errorf("exec by the old name of a renamed running container succeeded:\n%s", r)
	}
	assertEqual(t, "logs by the new name", s.mustNook(t, "logs", "busier").Stdout, "started\n")
	if got := s.mustNook(t, "ps", "--format", "{{.Names}} {{.State}}").Stdout; !strings.Contains(got, "busier running") {
		t.Errorf("ps after renaming a running container:\n%s", got)
	}
	s.mustNook(t, "stop", "busier")
	assertEqual(t, "wait by the new name", strings.TrimSpace(s.mustNook(t, "wait", "busier").Stdout), "3")
	status, running, _, code := inspectState(t, s, "busier")
	if running || status != "exited" || code != 3 {
		t.Errorf("after stop: status %s running %v code %d, want exited false 3", status, running, code)
	}
	// Stopped: rename again, then start it by that name.
	s.mustNook(t, "rename", id[:12], "calm")
	s.mustNook(t, "start", "calm")
	assertEqual(t, "exec after rename of a stopped container and start", s.mustNook(t, "exec", "calm", "echo", "back").Stdout, "back\n")
	s.mustNook(t, "run", "-d", "--name", "busier", "demo", "sleep", "600") // the old names are free
	s.mustNook(t, "rm", "-f", "busier")

	// A name in use: Docker's "Conflict." line, exit 125, both containers keep their names.
	r := s.nook(t, "rename", "calm", "second")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "Conflict", `"/second"`, "already in use")
	names = allNames(t, s)
	if !hasName(names, "calm") || !hasName(names, "second") {
		t.Errorf("after a refused rename, ps -a names %v: want calm and second", names)
	}
	// The same rules as run --name.
	for _, bad := range []string{"bad name", "_under", "a/b"} {
		r := s.nook(t, "rename", "calm", bad)
		assertExit(t, r, 125)
		assertErrorLine(t, r, "invalid container name")
		if rr := s.nook(t, "run", "--rm", "--name", bad, "demo", "true"); rr.Code != 125 {
			t.Errorf("run --name %q: exit %d, want 125 as rename gives", bad, rr.Code)
		}
	}
	r = s.nook(t, "rename", "no-such-container", "x")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "no such container")
	assertExit(t, s.nook(t, "rename", "calm"), 125)
	s.mustNook(t, "rm", "-f", "calm", "second")
}

// A running member of a user network renamed: the other members reach it by the new name at
// once (their /etc/hosts is rewritten, as Docker's DNS answers the new name), the old name is
// gone from it, and it joins again under the new name when started again.
func TestRenameOnUserNetwork(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "renamenet", storeOptions{}, false)
	nh := netHelper(t)
	s.mustNook(t, "network", "create", "lab")
	t.Cleanup(func() { s.nook(t, "network", "rm", "lab") })
	s.runDetached(t, "srv", "--network", "lab", "-v", nh+":/nh:ro", "demo", "/nh/nh", "tcppeer", "8080")
	s.runDetached(t, "peer", "--network", "lab", "demo", "sleep", "600")
	srvAddr := memberAddr(t, s, "lab", "srv")

	s.mustNook(t, "rename", "srv", "web")
	t.Cleanup(func() { s.nook(t, "rm", "-f", "web") })
	h := s.mustNook(t, "exec", "peer", "cat", "/etc/hosts").Stdout
	if !strings.Contains(h, srvAddr+"\tweb") || strings.Contains(h, "srv") {
		t.Errorf("peer's /etc/hosts after srv was renamed web: want %s named web and no srv:\n%s", srvAddr, h)
	}
	assertEqual(t, "network inspect's member name", memberAddr(t, s, "lab", "web"), srvAddr)
	r := s.mustNook(t, "exec", "peer", "sh", "-c", ncRetry("web", "8080")+"; nc -w 2 srv 8080 </dev/null 2>/dev/null || echo no-srv")
	if !strings.HasPrefix(r.Stdout, "peer ") || !strings.Contains(r.Stdout, "no-srv") {
		t.Errorf("from a member: want a reply by the new name and none by the old one, got:\n%s", r)
	}

	// Stopped, renamed again and started: it joins as the newest name.
	s.mustNook(t, "stop", "-t", "1", "web")
	s.mustNook(t, "rename", "web", "api")
	t.Cleanup(func() { s.nook(t, "rm", "-f", "api") })
	s.mustNook(t, "start", "api")
	apiAddr := memberAddr(t, s, "lab", "api")
	h = s.mustNook(t, "exec", "peer", "cat", "/etc/hosts").Stdout
	if !strings.Contains(h, apiAddr+"\tapi") || strings.Contains(h, "web") || strings.Contains(h, "srv") {
		t.Errorf("peer's /etc/hosts after web was stopped, renamed api and started: want %s named api only:\n%s", apiAddr, h)
	}
}
