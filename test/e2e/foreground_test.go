package e2e

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A container that a foreground `nook run` watches, whose payload runs as a user other than
// nook's own (-u 1000: a subordinate ID on the host), stopped, killed and removed by other
// nooks: each nook has a user namespace of its own, and a sibling's cannot signal such a
// process; the foreground nook does it for them.

// runForeground starts `nook run ARGS` in the background of the test and waits until its
// output shows ready. It returns the running command, its output, and its end.
func runForeground(t *testing.T, s *store, name, ready string, args ...string) (*exec.Cmd, *ptyOutput, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	t.Cleanup(cancel)
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", name) })
	cmd := s.command(ctx, nil, append([]string{"run", "--name", name}, args...)...)
	out := &ptyOutput{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), ready); time.Sleep(20 * time.Millisecond) {
		if len(done) > 0 || time.Now().After(deadline) {
			t.Fatalf("nook run %s never showed %q:\n%s", strings.Join(args, " "), ready, out.String())
		}
	}
	return cmd, out, done
}

// foregroundExit waits for the foreground nook and returns its exit status.
func foregroundExit(t *testing.T, cmd *exec.Cmd, out *ptyOutput, done <-chan error, within time.Duration) int {
	t.Helper()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("the foreground nook run did not end within %v:\n%s", within, out.String())
	}
	return cmd.ProcessState.ExitCode()
}

func TestForegroundNonRootStopKillRm(t *testing.T) {
	requireSubIDs(t)
	s := useMain(t)
	base := "fg" + strconv.Itoa(os.Getpid())
	loop := `echo uid=$(id -u); while :; do sleep 0.1; done`

	// stop: the payload's TERM handler ends it with 3, promptly.
	name := base + "s"
	cmd, out, done := runForeground(t, s, name, "uid=1000", "-u", "1000", "--network", "none", "demo", "sh", "-c", "trap 'exit 3' TERM; "+loop)
	start := time.Now()
	assertEqual(t, "nook stop output", s.mustNook(t, "stop", "-t", "20", name).Stdout, name+"\n")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("nook stop of a -u 1000 foreground container that handles TERM took %v: the TERM did not reach it", d)
	}
	assertEqual(t, "foreground nook run's status after stop", foregroundExit(t, cmd, out, done, 10*time.Second), 3)
	assertMatch(t, "STATUS after stop", psStatus(t, s, name), `^Exited \(3\) `)
	s.mustNook(t, "rm", name)

	// kill: SIGKILL by default; kill -s USR1 reaches a handler first.
	name = base + "k"
	cmd, out, done = runForeground(t, s, name, "uid=1000", "-u", "1000", "--network", "none", "demo", "sh", "-c", "trap 'echo got-usr1' USR1; "+loop)
	s.mustNook(t, "kill", "-s", "USR1", name)
	waitLog(t, s, name, "got-usr1", 10*time.Second)
	assertEqual(t, "nook kill output", s.mustNook(t, "kill", name).Stdout, name+"\n")
	assertEqual(t, "foreground nook run's status after kill", foregroundExit(t, cmd, out, done, 10*time.Second), 137)
	assertMatch(t, "STATUS after kill", psStatus(t, s, name), `^Exited \(137\) `)
	s.mustNook(t, "rm", name)

	// rm -f, of a kept and of a --rm container.
	for _, rm := range [][]string{nil, {"--rm"}} {
		name = base + "r" + strconv.Itoa(len(rm))
		args := append(append([]string{}, rm...), "-u", "1000", "--network", "none", "demo", "sh", "-c", loop)
		cmd, out, done = runForeground(t, s, name, "uid=1000", args...)
		start = time.Now()
		s.mustNook(t, "rm", "-f", name)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("nook rm -f of a -u 1000 foreground container took %v", d)
		}
		assertEqual(t, "foreground nook run's status after rm -f", foregroundExit(t, cmd, out, done, 10*time.Second), 137)
		assertNotContains(t, "nook ps -a after rm -f", s.mustNook(t, "ps", "-a", "--format", "{{.Names}}").Stdout, name)
	}
}

// A foreground container has no monitor to attach to: attach says so.
func TestForegroundAttachRefused(t *testing.T) {
	s := useMain(t)
	name := "fga" + strconv.Itoa(os.Getpid())
	cmd, out, done := runForeground(t, s, name, "ready", "--network", "none", "demo", "sh", "-c", "echo ready; sleep 1000")
	r := s.nook(t, "attach", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, "foreground", "cannot be attached")
	s.mustNook(t, "rm", "-f", name)
	assertEqual(t, "foreground nook run's status after rm -f", foregroundExit(t, cmd, out, done, 10*time.Second), 137)
}

// A --rm container whose nook is killed with kill -9 (or whose engine is) ends with it, and
// nothing is left to remove it; the next nook that looks for it does, as Docker's daemon and
// Podman's conmon remove such a container when it ends: `ps -a` does not list it, and its
// name is free for a new container.
func TestForegroundRmAfterKilledNook(t *testing.T) {
	s := useMain(t)
	// A --rm container that `nook create` made and nothing has started yet is no orphan: the
	// lookups that remove orphans leave it.
	s.mustNook(t, "create", "--rm", "--name", "rmkill-created", "--network", "none", "demo", "true")
	t.Cleanup(func() { s.nook(t, "rm", "-f", "rmkill-created") })
	for _, victim := range []string{"nook", "engine"} {
		t.Run(victim, func(t *testing.T) {
			arg := strconv.Itoa(600000 + os.Getpid()%300000)
			name := "rmkill-" + victim
			ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
			defer cancel()
			cmd := s.command(ctx, nil, "run", "--rm", "--name", name, "--network", "none", "demo", "sleep", arg)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
			ctrPid := findContainerProc(t, []string{"sleep", arg}, 30*time.Second)
			kill := cmd.Process.Pid
			if victim == "engine" {
				if kill = parentOf(ctrPid); kill <= 1 { // the container's init is the engine's child
					t.Fatalf("the container's process %d has no engine parent (%d)", ctrPid, kill)
				}
			}
			if err := syscall.Kill(kill, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 %d (%s): %v", kill, victim, err)
			}
			_ = cmd.Wait()
			for deadline := time.Now().Add(5 * time.Second); syscall.Kill(ctrPid, 0) == nil; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the container's process %d outlived kill -9 of the %s", ctrPid, victim)
				}
			}
			if victim == "nook" {
				// The name first: a new container takes it.
				assertEqual(t, "run --rm --name "+name+" after the kill", s.mustNook(t, "run", "--rm", "--name", name, "--network", "none", "demo", "echo", "again").Stdout, "again\n")
			}
			names := s.mustNook(t, "ps", "-a", "--format", "{{.Names}}").Lines()
			for _, n := range names {
				if n == name {
					t.Errorf("ps -a after kill -9 of the %s still lists the --rm container %s: %q", victim, name, names)
				}
			}
			r := s.nook(t, "inspect", "--type", "container", name)
			assertExit(t, r, 125)
			assertErrorLine(t, r, "no such container")
			assertContains(t, "ps -a: the created --rm container", strings.Join(names, "\n")+"\n", "rmkill-created\n")
			assertNoOrphanLayers(t, s)
		})
	}
}
