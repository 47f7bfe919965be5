package portfwd

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain runs echo servers when re-executed as the "container": TCP and UDP on
// 127.0.0.1:PORTFWD_ECHO_PORT of its own network namespace, whose loopback it brings up.
func TestMain(m *testing.M) {
	if p := os.Getenv("PORTFWD_ECHO_PORT"); p != "" {
		echo(p)
		return
	}
	os.Exit(m.Run())
}

func echo(port string) {
	if err := loopbackUp(); err != nil {
		fmt.Println("lo:", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:"+port)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:"+port)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("udp "+from.String()+" "), buf[:n]...), from)
		}
	}()
	fmt.Println("ready")
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			fmt.Fprintf(c, "from %s\n", c.RemoteAddr())
			_, _ = io.Copy(c, c)
		}()
	}
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// container starts the test binary as an echo server in a new network namespace (needs root).
func container(t *testing.T, port int) int {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (the end-to-end suite covers the rootless path)")
	}
	// The parent-death signal follows the thread that forks, not the process: the forwarder
	// ends threads of its own (those it moved into a network namespace), and one of them
	// could be this one. The test's goroutine keeps this thread until the test ends.
	runtime.LockOSThread()
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), "PORTFWD_ECHO_PORT="+strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if strings.TrimSpace(string(buf[:n])) != "ready" {
		t.Fatalf("echo server: %q", buf[:n])
	}
	return cmd.Process.Pid
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if strings.HasPrefix(network, "udp") {
		c, err := net.ListenPacket(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen(network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestForwardTCPAndUDP(t *testing.T) {
	pid := container(t, 80)
	tport, uport := freePort(t, "tcp4"), freePort(t, "udp4")
	f, err := Listen([]Port{
		{HostIP: "127.0.0.1", HostPort: tport, ContainerPort: 80, Proto: "tcp"},
		{HostPort: uport, ContainerPort: 80, Proto: "udp"}, // every address: [::] and 0.0.0.0
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Serve(pid); err != nil {
		t.Fatal(err)
	}

	// TCP: the container sees 127.0.0.1; a megabyte goes there and back, and half-close
	// reaches the other side (the echo ends its copy, closes, and ReadAll returns).
	c, err := net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(tport))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	payload := bytes.Repeat([]byte("nook"), 1<<18)
	go func() { _, _ = c.Write(payload); _ = c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	first, rest, _ := bytes.Cut(got, []byte("\n"))
	if !strings.HasPrefix(string(first), "from 127.0.0.1:") {
		t.Errorf("the container saw the connection come from %q, want 127.0.0.1", first)
	}
	if !bytes.Equal(rest, payload) {
		t.Errorf("echoed %d bytes, want %d", len(rest), len(payload))
	}

	// UDP, from two peers (each gets its own flow), over IPv4 and, where the host has it, IPv6.
	peers := []string{"udp4", "udp4"}
	if l, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
		l.Close()
		peers = append(peers, "udp6")
	}
	for i, network := range peers {
		addr := "127.0.0.1:" + strconv.Itoa(uport)
		if network == "udp6" {
			addr = "[::1]:" + strconv.Itoa(uport)
		}
		u, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = u.SetDeadline(time.Now().Add(5 * time.Second))
		msg := fmt.Sprintf("ping-%d", i)
		if _, err := u.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		n, err := u.Read(buf)
		u.Close()
		if err != nil || !strings.HasPrefix(string(buf[:n]), "udp 127.0.0.1:") || !strings.HasSuffix(string(buf[:n]), msg) {
			t.Errorf("UDP over %s: %q, %v", network, buf[:n], err)
		}
	}

	// Close frees the host ports at once.
	f.Close()
	l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(tport))
	if err != nil {
		t.Errorf("host port %d still bound after Close: %v", tport, err)
	} else {
		l.Close()
	}
}

func TestListenConflict(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = Listen([]Port{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80, Proto: "tcp"}})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("Listen on a taken port: %v", err)
	}
}

// Many connections at once: each is dialled in the container and spliced.
func TestForwardConcurrent(t *testing.T) {
	pid := container(t, 81)
	port := freePort(t, "tcp4")
	f, err := Listen([]Port{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 81, Proto: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Serve(pid); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp4", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			msg := fmt.Sprintf("hello %d", i)
			fmt.Fprintln(c, msg)
			_ = c.(*net.TCPConn).CloseWrite()
			b, _ := io.ReadAll(c)
			if !strings.HasSuffix(string(b), msg+"\n") {
				errs <- fmt.Errorf("connection %d: %q", i, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Pause refuses while a connection is open; once the forwarder is quiet it hands over its
// sockets, and a new Forwarder (Resume) serves what waited in them meanwhile: a connection in
// the listen backlog, a datagram in the socket's queue. Copies of the fds stand in for what
// an exec keeps.
func TestPauseResume(t *testing.T) {
	pid := container(t, 82)
	tport, uport := freePort(t, "tcp4"), freePort(t, "udp4")
	ports := []Port{
		{HostIP: "127.0.0.1", HostPort: tport, ContainerPort: 82, Proto: "tcp"},
		{HostIP: "127.0.0.1", HostPort: uport, ContainerPort: 82, Proto: "udp"},
	}
	f, err := Listen(ports)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Serve(pid); err != nil {
		t.Fatal(err)
	}
	const quiet = 100 * time.Millisecond
	c, err := net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(tport))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line := make([]byte, 64)
	if _, err := c.Read(line); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * quiet)
	if _, ok := f.Pause(quiet); ok {
		f.Unpause()
		t.Fatal("Pause with a forwarded connection open")
	}
	c.Close()
	var h Handoff
	ok := false
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h, ok = f.Pause(quiet)
	}
	if !ok {
		t.Fatal("no Pause within 5 s of the last connection's end")
	}
	if len(h.Socks) != 2 || h.Netns < 0 {
		f.Unpause()
		t.Fatalf("handoff %+v: want the netns and 2 sockets", h)
	}
	dup := func(fd int) int {
		n, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	kept := Handoff{Netns: dup(h.Netns), Socks: []int{dup(h.Socks[0]), dup(h.Socks[1])}}
	f.Unpause()
	f.Close()

	// Nobody forwards now: the connection waits in the backlog, the datagram in the queue.
	c, err = net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(tport))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(c, "waited")
	_ = c.(*net.TCPConn).CloseWrite()
	u, err := net.Dial("udp4", "127.0.0.1:"+strconv.Itoa(uport))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_ = u.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := u.Write([]byte("queued")); err != nil {
		t.Fatal(err)
	}

	g, err := Resume(kept, ports)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), "from 127.0.0.1:") || !strings.HasSuffix(string(b), "\nwaited\n") {
		t.Errorf("the connection made while nobody forwarded: %q, %v", b, err)
	}
	buf := make([]byte, 256)
	n, err := u.Read(buf)
	if err != nil || !strings.HasSuffix(string(buf[:n]), " queued") {
		t.Errorf("the datagram sent while nobody forwarded: %q, %v", buf[:n], err)
	}

	// Sockets that do not match the ports are refused (and closed).
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rc, _ := l.(*net.UDPConn).SyscallConn()
	var ufd int
	_ = rc.Control(func(fd uintptr) { ufd = dup(int(fd)) })
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if _, err := Resume(Handoff{Netns: dup(int(ns.Fd())), Socks: []int{ufd}}, ports[:1]); err == nil {
		t.Error("Resume of a UDP socket as a published TCP port: no error")
	}
}
