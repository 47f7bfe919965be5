package slirp

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTailSuffix(t *testing.T) {
	tl := &tail{max: 128}
	_, _ = tl.Write([]byte("Starting slirp\n* MTU: 65520\nsetns(CLONE_NEWNET): Operation not permitted\nchild failed(1)\n"))
	if got, want := tl.suffix(), ": setns(CLONE_NEWNET): Operation not permitted; child failed(1)"; got != want {
		t.Errorf("suffix = %q, want %q", got, want)
	}
	_, _ = tl.Write([]byte(strings.Repeat("x", 200)))
	if len(tl.buf) != 128 {
		t.Errorf("tail kept %d bytes, want 128", len(tl.buf))
	}
	if got := (&tail{max: 8}).suffix(); got != "" {
		t.Errorf("empty suffix = %q", got)
	}
}

// TestStartAddPortClose runs slirp4netns for real against a process in a new network
// namespace, which needs root (the engine is root of its own user namespace).
func TestStartAddPortClose(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (the end-to-end suite covers the rootless path)")
	}
	if _, err := Available(); err != nil {
		t.Skipf("slirp4netns cannot run here: %v", err)
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox is not installed")
	}
	// A one-shot server on port 80 of the new namespace; it binds before tap0 exists.
	target := exec.Command(bb, "sh", "-c", "echo hello-slirp | "+bb+" nc -l -p 80")
	target.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = target.Process.Kill(); _ = target.Wait() }()

	dir := t.TempDir()
	n, err := StartSlirp4netns(context.Background(), Options{PID: target.Process.Pid, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dev, _ := os.ReadFile("/proc/" + strconv.Itoa(target.Process.Pid) + "/net/dev")
	if !strings.Contains(string(dev), Interface+":") {
		t.Errorf("no %s in the target's namespace:\n%s", Interface, dev)
	}

	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := n.AddPort("tcp", "127.0.0.1", port, 80); err != nil {
		t.Fatal(err)
	}
	if err := n.AddPort("tcp", "127.0.0.1", port, 80); err == nil {
		t.Errorf("publishing the same host port twice succeeded")
	}
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && got == ""; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		got = strings.TrimSpace(string(b))
	}
	if got != "hello-slirp" {
		t.Errorf("through the published port: %q, want hello-slirp", got)
	}

	pid := n.proc.Pid
	n.Close()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("slirp4netns (pid %d) still exists after Close", pid)
	}
	if _, err := os.Stat(dir + "/" + SocketName); !os.IsNotExist(err) {
		t.Errorf("the API socket is left after Close: %v", err)
	}
}

func TestStartFails(t *testing.T) {
	if _, err := Available(); err != nil {
		t.Skipf("slirp4netns cannot run here: %v", err)
	}
	// No such process: slirp4netns' child cannot join its namespace and the error says so.
	_, err := StartSlirp4netns(context.Background(), Options{PID: 1 << 22, Dir: t.TempDir(), ReadyTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "slirp4netns") {
		t.Fatalf("Start against a missing pid: %v", err)
	}
	t.Log(err)
}
