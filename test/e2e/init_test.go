package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// zombies lists the zombie processes of a running container, by pid.
func zombies(t *testing.T, s *store, name string) string {
	t.Helper()
	r := s.mustNook(t, "exec", name, "sh", "-c", `for f in /proc/[0-9]*/stat; do read -r pid comm state rest < "$f" && [ "$state" = Z ] && echo "$pid"; done; true`)
	return strings.TrimSpace(r.Stdout)
}

// `nook run --init`: nook-init is PID 1, runs the command as its child with its exit status,
// reaps what ends orphaned in the container, and passes signals on; and the same container
// without --init, where the command is PID 1, shows what each of these changes.
func TestRunInit(t *testing.T) {
	s := useMain(t)

	r := s.nook(t, "run", "--rm", "--init", "--network", "none", "demo", "sh", "-c", `tr '\0' ' ' </proc/1/cmdline; exit 3`)
	assertExit(t, r, 3)
	assertEqual(t, "PID 1 with --init", strings.TrimSpace(r.Stdout), "/dev/init -- sh -c tr '\\0' ' ' </proc/1/cmdline; exit 3")
	r = s.nook(t, "run", "--rm", "--network", "none", "demo", "sh", "-c", `tr '\0' ' ' </proc/1/cmdline; exit 0`)
	assertExit(t, r, 0)
	assertEqual(t, "PID 1 without --init", strings.TrimSpace(r.Stdout), "sh -c tr '\\0' ' ' </proc/1/cmdline; exit 0")

	// A command that cannot be run: 127 and 126, as without --init.
	r = s.nook(t, "run", "--rm", "--init", "--network", "none", "demo", "no-such-command")
	assertExit(t, r, 127)
	assertContains(t, "stderr of a missing command", r.Stderr, `exec "no-such-command": executable file not found in $PATH`)
	r = s.nook(t, "run", "--rm", "--init", "--network", "none", "demo", "/etc/passwd")
	assertExit(t, r, 126)

	// Orphans: a process that `nook exec` leaves behind ends as PID 1's child. nook-init reaps
	// it; `sleep` as PID 1 never does, and it stays a zombie.
	for _, init := range []bool{true, false} {
		name := "init-reap"
		args := []string{"run", "-d", "--name", name, "--network", "none"}
		if !init {
			name = "noinit-reap"
			args[3] = name
		}
		if init {
			args = append(args, "--init")
		}
		s.mustNook(t, append(args, "demo", "sleep", "1000")...)
		t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
		s.mustNook(t, "exec", name, "sh", "-c", "(sleep 0.1 &)")
		var z string
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if z = zombies(t, s, name); (z == "") == init {
				break
			}
		}
		if init && z != "" {
			t.Errorf("with --init, the orphan is a zombie (pids %s): nook-init did not reap it", z)
		}
		if !init && z == "" {
			t.Errorf("without --init, no zombie after the orphan ended: this check cannot see one")
		}
	}

	// Signals: `stop` sends SIGTERM to PID 1. nook-init passes it to sleep, which ends by it
	// (143); sleep as PID 1 would not get it (no handler) and be killed at the timeout (137).
	s.mustNook(t, "stop", "-t", "60", "init-reap")
	r = s.mustNook(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.HostConfig.Init}}", "init-reap")
	assertEqual(t, "state, exit code and HostConfig.Init after stop", strings.TrimSpace(r.Stdout), "exited 143 true")
	// start again: the record keeps --init.
	s.mustNook(t, "start", "init-reap")
	r = s.mustNook(t, "exec", "init-reap", "sh", "-c", `tr '\0' ' ' </proc/1/cmdline`)
	assertEqual(t, "PID 1 after start", strings.TrimSpace(r.Stdout), "/dev/init -- sleep 1000")
	// Nothing of the init is in the container's files: it is on nook's /dev tmpfs.
	r = s.mustNook(t, "exec", "init-reap", "sh", "-c", `grep " /dev/init " /proc/self/mountinfo | grep -c " ro,"`)
	assertEqual(t, "/dev/init mounted read-only", strings.TrimSpace(r.Stdout), "1")
}

// With -t, the command is in the terminal's foreground process group, not nook-init: the
// terminal's signals (Ctrl-C) reach it, once.
func TestRunInitTerminal(t *testing.T) {
	s := useMain(t)
	master, slave := openPty(t)
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := exec_(ctx, s, "run", "--rm", "-it", "--init", "--network", "none", "demo", "sh", "-c",
		`read -r pid comm state ppid pgrp sid tty tpgid rest </proc/self/stat; echo "P""G:$pid $pgrp $tpgid"; trap 'echo "GOT""-INT"; exit 5' INT; echo "RE""ADY"; while :; do sleep 0.1; done`)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	out, readDone := startOnPty(t, cmd, master, slave)
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	if !out.waitFor("READY", 30*time.Second) {
		_ = cmd.Process.Kill()
		t.Fatalf("no READY from the container:\n%s", out.String())
	}
	line := out.String()[strings.Index(out.String(), "PG:")+3:]
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != f[1] || f[1] != f[2] || f[0] == "1" {
		t.Errorf("the command's pid, process group and the terminal's foreground group: %q, want one group of its own (not PID 1's) that is the foreground one", f)
	}
	if _, err := master.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	select {
	case <-waitErr:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("Ctrl-C did not end the command:\n%s", out.String())
	}
	<-readDone
	if n := strings.Count(out.String(), "GOT-INT"); n != 1 {
		t.Errorf("the command saw SIGINT %d times, want once:\n%s", n, out.String())
	}
	assertEqual(t, "exit code after Ctrl-C", cmd.ProcessState.ExitCode(), 5)
}
