package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// handOver returns the reason the lean engine gave for handing the command to the full engine
// (NOOK_TIMING's "engine lean hands over" mark), after checking that the full engine then ran
// in the same process ("main" again, same pid); "" when the lean engine did the command itself.
func handOver(t *testing.T, r result) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^timing: (\d+) engine lean hands over: (.*?)\s+[0-9.]+$`).FindStringSubmatch(r.Stderr)
	if m == nil {
		return ""
	}
	after := r.Stderr[strings.Index(r.Stderr, m[0])+len(m[0]):]
	if !regexp.MustCompile(`(?m)^timing: ` + m[1] + ` main\s`).MatchString(after) {
		t.Errorf("the lean engine (pid %s) handed over, but no full engine started in its place:\n%s", m[1], r.Stderr)
	}
	return m[2]
}

// The container commands run in the lean engine (bin/nook-engine-lean), which has no
// containers/image: where a command needs it, the lean engine hands the command, unchanged,
// to the full engine in its own process before it has done anything (userns.ExecFull). A run or
// create of an image that is only in a registry pulls it and runs as before; a detached run's
// monitor outlives the handed-over engine (the control pipe went along); an image the lean
// engine finds runs without a hand-over.
func TestLeanEngineHandsOver(t *testing.T) {
	reg, _ := needRegistries(t)
	s := newStore(t, "lean", storeOptions{}, false)
	for _, tag := range []string{"1", "2", "3"} {
		s.mustNook(t, "tag", "demo", reg.addr+"/lean/bb:"+tag)
		s.mustNook(t, "push", "-q", reg.addr+"/lean/bb:"+tag)
	}
	timing := []string{"NOOK_TIMING=1"}

	// The imported image is found and read by the lean engine itself.
	r := s.nookEnv(t, timing, "", "run", "--rm", "demo", "echo", "lean")
	assertExit(t, r, 0)
	assertEqual(t, "run of a local image", r.Stdout, "lean\n")
	assertEqual(t, "hand-over for a local image", handOver(t, r), "")

	s2 := newStore(t, "lean-empty", storeOptions{}, true)
	// run: the image is only in the registry.
	r = s2.nookEnv(t, timing, "", "run", "--rm", reg.addr+"/lean/bb:1", "echo", "pulled")
	assertExit(t, r, 0)
	assertEqual(t, "run output", r.Stdout, "pulled\n")
	assertContains(t, "run stderr", r.Stderr, "Unable to find image '"+reg.addr+"/lean/bb:1' locally")
	assertContains(t, "hand-over of a run that pulls", handOver(t, r), "pull "+reg.addr+"/lean/bb:1")
	// Now it is local: the lean engine runs it.
	r = s2.nookEnv(t, timing, "", "run", "--rm", reg.addr+"/lean/bb:1", "echo", "local")
	assertExit(t, r, 0)
	assertEqual(t, "run output", r.Stdout, "local\n")
	assertEqual(t, "hand-over for a pulled image", handOver(t, r), "")

	// create: pulls, and the container starts.
	r = s2.nookEnv(t, timing, "", "create", "--name", "lean-created", reg.addr+"/lean/bb:2", "echo", "created")
	assertExit(t, r, 0)
	assertContains(t, "hand-over of a create that pulls", handOver(t, r), "pull")
	assertEqual(t, "start -a", s2.mustNook(t, "start", "-a", "lean-created").Stdout, "created\n")
	s2.mustNook(t, "rm", "lean-created")

	// run -d: the full engine's monitor lives on after the hand-over.
	r = s2.nookEnv(t, timing, "", "run", "-d", "--name", "lean-detached", reg.addr+"/lean/bb:3", "sleep", "300")
	assertExit(t, r, 0)
	assertContains(t, "hand-over of a detached run that pulls", handOver(t, r), "pull")
	assertEqual(t, "status after run -d", strings.TrimSpace(s2.mustNook(t, "ps", "--format", "{{.Names}} {{.State}}").Stdout), "lean-detached running")
	s2.mustNook(t, "rm", "-f", "lean-detached")

	// A failed pull after the hand-over still says what went wrong, once.
	r = s2.nookEnv(t, timing, "", "run", "--rm", reg.addr+"/lean/bb:nope", "true")
	assertExit(t, r, 125)
	assertContains(t, "hand-over of a failed pull", handOver(t, r), "pull")
	if n := strings.Count(r.Stderr, "Error:"); n != 1 {
		t.Errorf("a failed pull after the hand-over printed %d errors:\n%s", n, r.Stderr)
	}
}
