package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal pair: the master for the test, the slave for nook.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("TIOCGPTN: %v", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(uintptr(sfd), name)
}

func setWinsize(t *testing.T, f *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatalf("TIOCSWINSZ: %v", err)
	}
}

// ptyOutput collects what the master reads.
type ptyOutput struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// Write appends to the output: a ptyOutput can collect a command's stdout and stderr too.
func (p *ptyOutput) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

// waitFor polls until the output contains s.
func (p *ptyOutput) waitFor(s string, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(p.String(), s) {
			return true
		}
	}
	return false
}

// startOnPty starts cmd with the pty's slave as its controlling terminal and standard
// streams, as an interactive shell would run it, and collects what the master reads. The
// returned channel closes when the master reads its end.
func startOnPty(t *testing.T, cmd *exec.Cmd, master, slave *os.File) (*ptyOutput, <-chan struct{}) {
	t.Helper()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	out := &ptyOutput{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			if n > 0 {
				_, _ = out.Write(b[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	return out, done
}

// `nook run --rm -it demo sh` driven through a pty: a real terminal whose size
// follows the outer terminal's.
func TestTerminal(t *testing.T) {
	s := useMain(t)
	master, slave := openPty(t)
	defer master.Close()
	setWinsize(t, master, 24, 80)

	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := exec_(ctx, s, "run", "--rm", "-it", "demo", "sh")
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	// nook's own controlling terminal is the pty, as in an interactive shell.
	out, readDone := startOnPty(t, cmd, master, slave)
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	fail := func(format string, args ...any) {
		t.Helper()
		_ = cmd.Process.Kill()
		t.Fatalf(format+"\n--- terminal output ---\n%s", append(args, out.String())...)
	}
	typ := func(line string) {
		t.Helper()
		if _, err := master.Write([]byte(line + "\r")); err != nil {
			fail("write to the terminal: %v", err)
		}
	}

	// The typed text is echoed back by the terminal; the markers are built by
	// the shell ("A""1" -> A1) so that only the command's output matches.
	typ(`echo "T""1:$(tty)"; echo "S""1:$(stty size)"; test -c /dev/console && echo "C""1:ok"`)
	if !out.waitFor("S1:", 30*time.Second) {
		fail("no answer from the shell in the container")
	}
	if !out.waitFor("C1:ok", 2*time.Second) {
		t.Errorf("/dev/console is not a character device in a -t container")
	}
	o := out.String()
	if !strings.Contains(o, "T1:/dev/pts/") && !strings.Contains(o, "T1:/dev/console") {
		t.Errorf("tty in the container does not name a terminal")
	}
	if strings.Contains(o, "not a tty") {
		t.Errorf("the container's stdin is not a terminal")
	}
	if !strings.Contains(o, "S1:24 80") {
		t.Errorf("stty size in the container is not the outer 24 80")
	}

	// Resize the outer terminal: nook gets SIGWINCH and passes the size on.
	setWinsize(t, master, 40, 132)
	ok := false
	for i := 0; i < 50 && !ok; i++ {
		typ(`echo "S""2:$(stty size)"`)
		ok = out.waitFor("S2:40 132", 200*time.Millisecond)
	}
	if !ok {
		t.Errorf("stty size did not follow the window size change to 40 132")
	}

	typ("exit 7")
	select {
	case <-waitErr:
	case <-time.After(30 * time.Second):
		fail("nook did not exit after `exit 7`")
	}
	<-readDone
	t.Logf("terminal output:\n%s", out.String())
	assertEqual(t, "exit code of nook run -it after exit 7", cmd.ProcessState.ExitCode(), 7)
}

// -t without -i: the process has a terminal, and nook still exits with its status.
func TestTerminalWithoutStdin(t *testing.T) {
	s := useMain(t)
	master, slave := openPty(t)
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := exec_(ctx, s, "run", "--rm", "-t", "demo", "sh", "-c", `test -t 0 && test -t 1 && echo "IS""TTY"; exit 5`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := master.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	_ = cmd.Wait()
	t.Logf("terminal output: %q", b.String())
	assertContains(t, "output of -t", b.String(), "ISTTY")
	assertEqual(t, "exit code", cmd.ProcessState.ExitCode(), 5)
}

// exec_ is store.command without the process group (the pty tests make nook a
// session leader instead).
func exec_(ctx context.Context, s *store, args ...string) *exec.Cmd {
	cmd := s.command(ctx, nil, args...)
	cmd.SysProcAttr = nil
	return cmd
}

// drivePty runs `nook ARGS` on a fresh 24x80 pty, lets script type into it while it runs, and
// returns what it printed and how it ended; nook must end within 20 s of the script's return.
func drivePty(t *testing.T, s *store, args []string, script func(master *os.File, out *ptyOutput)) (*ptyOutput, error) {
	t.Helper()
	master, slave := openPty(t)
	defer master.Close()
	setWinsize(t, master, 24, 80)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	cmd := exec_(ctx, s, args...)
	out, _ := startOnPty(t, cmd, master, slave)
	script(master, out)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out, err
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("nook %s did not end:\n%s", strings.Join(args, " "), out.String())
	}
	return out, nil
}

// --detach-keys: another sequence detaches from run -it, attach and start -ai, and the
// default one no longer does; a bad sequence is refused before anything is created.
func TestTerminalDetachKeys(t *testing.T) {
	s := useMain(t)
	name := "tdk" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { s.exec(context.Background(), nil, "", "rm", "-f", name) })
	keys := []string{"--detach-keys", "ctrl-a,x"}
	// stillAttached types Ctrl-P Ctrl-Q and Ctrl-A alone (then Ctrl-C), and checks that
	// the shell still answers through the same nook.
	stillAttached := func(master *os.File, out *ptyOutput, marker string) {
		t.Helper()
		// First a line through the attached terminal: nook has made it raw by then, so the
		// control characters below reach the container, not nook's terminal driver.
		_, _ = master.Write([]byte("echo " + marker[:1] + "''" + marker[1:] + "-1\r"))
		if !out.waitFor(marker+"-1\r\n", 10*time.Second) {
			t.Errorf("no answer from the shell through nook %s:\n%s", marker, out.String())
		}
		_, _ = master.Write([]byte{0x10, 0x11})
		time.Sleep(100 * time.Millisecond)
		_, _ = master.Write([]byte{0x01, 'y', 0x03}) // Ctrl-C: the shell drops the line
		time.Sleep(100 * time.Millisecond)
		_, _ = master.Write([]byte("echo " + marker[:1] + "''" + marker[1:] + "\r"))
		if !out.waitFor(marker+"\r\n", 10*time.Second) {
			t.Errorf("the shell did not answer after Ctrl-P Ctrl-Q with --detach-keys ctrl-a,x (detached?):\n%s", out.String())
		}
	}
	detach := func(master *os.File) { _, _ = master.Write([]byte{0x01, 'x'}) }

	out, err := drivePty(t, s, append(append([]string{"run", "-it", "--name", name}, keys...), "demo", "sh"), func(master *os.File, out *ptyOutput) {
		stillAttached(master, out, "RUNIT")
		detach(master)
	})
	if err != nil {
		t.Errorf("nook run -it after Ctrl-A x: %v, want exit 0\n%s", err, out.String())
	}
	assertMatch(t, "STATUS after detaching from run -it", psStatus(t, s, name), "^Up ")

	out, err = drivePty(t, s, append(append([]string{"attach"}, keys...), name), func(master *os.File, out *ptyOutput) {
		stillAttached(master, out, "ATTACH")
		detach(master)
	})
	if err != nil {
		t.Errorf("nook attach after Ctrl-A x: %v, want exit 0\n%s", err, out.String())
	}
	assertMatch(t, "STATUS after detaching from attach", psStatus(t, s, name), "^Up ")

	s.mustNook(t, "kill", name)
	out, err = drivePty(t, s, append(append([]string{"start", "-a", "-i"}, keys...), name), func(master *os.File, out *ptyOutput) {
		stillAttached(master, out, "STARTAI")
		detach(master)
	})
	if err != nil {
		t.Errorf("nook start -ai after Ctrl-A x: %v, want exit 0\n%s", err, out.String())
	}
	assertMatch(t, "STATUS after detaching from start -ai", psStatus(t, s, name), "^Up ")

	// The default sequence still works where no --detach-keys is given.
	out, err = drivePty(t, s, []string{"attach", name}, func(master *os.File, out *ptyOutput) {
		time.Sleep(200 * time.Millisecond)
		_, _ = master.Write([]byte{0x10, 0x11})
	})
	if err != nil {
		t.Errorf("nook attach after Ctrl-P Ctrl-Q: %v, want exit 0\n%s", err, out.String())
	}
	assertMatch(t, "STATUS after detaching with the default keys", psStatus(t, s, name), "^Up ")

	// Bad sequences: exit 125, a clear error, and no container made.
	before := s.mustNook(t, "ps", "-a", "-q").Stdout
	for _, args := range [][]string{
		{"run", "-it", "--detach-keys", "ctrl-1", "demo", "true"},
		{"run", "-d", "--detach-keys", "ctrl-p,,ctrl-q", "demo", "true"},
		{"attach", "--detach-keys", "alt-x", name},
		{"start", "-a", "-i", "--detach-keys", "foo", name},
	} {
		r := s.nook(t, args...)
		assertExit(t, r, 125)
		assertErrorLine(t, r, "invalid detach keys")
	}
	assertEqual(t, "containers after the refused commands", s.mustNook(t, "ps", "-a", "-q").Stdout, before)
	s.mustNook(t, "rm", "-f", name)
}
