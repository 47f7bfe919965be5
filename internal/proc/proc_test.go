package proc

import (
	"os"
	"os/exec"
	"testing"
)

func TestSelfIsAlive(t *testing.T) {
	start := Self()
	if start == "" {
		t.Fatal("no start time for this process")
	}
	if !Alive(os.Getpid(), start) {
		t.Fatal("this process is not alive by its own start time")
	}
	if Alive(os.Getpid(), start+"1") {
		t.Fatal("a different start time must mean another process")
	}
	if Alive(0, start) || Alive(-1, start) {
		t.Fatal("pid 0 and negative pids are never alive")
	}
}

func TestZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start true: %v", err)
	}
	pid := cmd.Process.Pid
	start, _, err := Start(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Not reaped yet: once it has exited it is a zombie.
	for i := 0; i < 1000; i++ {
		if _, state, _ := Start(pid); state == "Z" {
			break
		}
		exec.Command("sleep", "0.001").Run()
	}
	if Alive(pid, start) {
		t.Fatal("an exited, unreaped child is reported alive")
	}
	_ = cmd.Wait()
	if Alive(pid, start) {
		t.Fatal("a reaped child is reported alive")
	}
}

func TestCommandWithParentheses(t *testing.T) {
	// A name like "a) b (c" must not shift the fields.
	dir := t.TempDir()
	link := dir + "/a) b (c"
	if err := os.Symlink("/bin/sleep", link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "5")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	start, state, err := Start(cmd.Process.Pid)
	if err != nil || start == "" || (state != "S" && state != "R") {
		t.Fatalf("start %q state %q err %v", start, state, err)
	}
}
