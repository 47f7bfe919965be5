package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bypassClientSrc is the container side of the bypass4netns tests: it connects with a blocking
// socket (socket(2) and connect(2) as C programs do) or with Go's net.Dial (a non-blocking
// socket: connect returns EINPROGRESS, then the poller waits), and says which local address
// the connection got, what the peer wrote, or the error. A connection made by slirp4netns
// starts at the container's tap0 (10.0.2.100); one made by the handler at a host address.
const bypassClientSrc = `package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func fail(err error) {
	fmt.Println("error:", err)
	os.Exit(1)
}

func main() {
	mode, addr := os.Args[1], os.Args[2]
	var c net.Conn
	switch mode {
	case "block":
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			fail(err)
		}
		sa := &syscall.SockaddrInet4{Port: p}
		copy(sa.Addr[:], net.ParseIP(host).To4())
		if err := syscall.Connect(fd, sa); err != nil {
			fail(err)
		}
		f := os.NewFile(uintptr(fd), "socket")
		if c, err = net.FileConn(f); err != nil {
			fail(err)
		}
		f.Close()
	case "nonblock":
		var err error
		if c, err = net.Dial("tcp4", addr); err != nil {
			fail(err)
		}
	case "serve": // servers on NET:PORT,... (say tcp4:80,tcp:81); each answers with its addresses
		for _, np := range strings.Split(addr, ",") {
			netw, port, _ := strings.Cut(np, ":")
			l, err := net.Listen(netw, ":"+port)
			if err != nil {
				fail(err)
			}
			fmt.Println("listening", np, l.Addr())
			go func() {
				for {
					s, err := l.Accept()
					if err != nil {
						return
					}
					fmt.Fprintf(s, "local %s peer %s\n", s.LocalAddr(), s.RemoteAddr())
					s.Close()
				}
			}()
		}
		select {}
	case "self": // a server on the container's loopback, and a connection to it of each kind
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			fail(err)
		}
		go func() {
			for {
				s, err := l.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(s, "hello from %s\n", s.LocalAddr())
				s.Close()
			}
		}()
		for _, m := range []string{"block", "nonblock"} {
			os.Args = []string{os.Args[0], m, l.Addr().String()}
			main()
		}
		return
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fail(err)
	}
	fmt.Printf("%s local %s read %s", mode, c.LocalAddr(), line)
	c.Close()
}
`

var bypassClientBuild = staticHelper{name: "bpc", src: bypassClientSrc}

// peerServer accepts TCP connections on addr until the test ends: it writes "hello" to each
// and records the peer's address.
type peerServer struct {
	addr  string
	mu    sync.Mutex
	peers []string
}

func servePeers(t *testing.T, addr string) *peerServer {
	t.Helper()
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ps := &peerServer{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ps.mu.Lock()
			ps.peers = append(ps.peers, c.RemoteAddr().String())
			ps.mu.Unlock()
			fmt.Fprintln(c, "hello")
			c.Close()
		}
	}()
	return ps
}

func (ps *peerServer) saw(peer string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.peers {
		if p == peer {
			return true
		}
	}
	return false
}

// requireBypass skips when slirp4netns or the kernel's part cannot work here.
func requireBypass(t *testing.T, s *store) {
	t.Helper()
	requireSlirp(t)
	info := s.mustNook(t, "info").Stdout
	if !strings.Contains(info, "bypass4netns (slirp4netns:bypass4netns=true): supported") {
		skipf(t, "bypass4netns is not usable here: %s", info)
	}
}

// clientLocal runs the client in a container and returns the local address it reports for
// mode ("block" or "nonblock") to dst; it fails the test unless the client read hello.
func clientLocal(t *testing.T, s *store, network, mode, dst string) string {
	t.Helper()
	r := s.nook(t, "run", "--rm", "--network", network, "-v", bypassClientBuild.dir(t)+":/bpc:ro", "demo", "/bpc/bpc", mode, dst)
	if r.Code != 0 || !strings.HasSuffix(strings.TrimSpace(r.Stdout), "read hello") {
		t.Fatalf("%s connect to %s with --network %s: exit %d\n%s", mode, dst, network, r.Code, r)
	}
	f := strings.Fields(r.Stdout)
	return f[2]
}

// With bypass4netns=true a container's TCP connection to a host address is made in the host's
// network namespace: the container's socket has the host's address and the port the server saw
// (through slirp4netns it has 10.0.2.100, and the server sees slirp4netns' own socket), for
// blocking and non-blocking connects alike; a closed port is refused as usual.
func TestNetworkBypassConnect(t *testing.T) {
	s := useMain(t)
	requireBypass(t, s)
	host := hostIPv4(t)
	srv := servePeers(t, host+":0")
	for _, mode := range []string{"block", "nonblock"} {
		local := clientLocal(t, s, "slirp4netns", mode, srv.addr)
		if !strings.HasPrefix(local, "10.0.2.100:") {
			t.Errorf("%s connect through slirp4netns: local address %s, want 10.0.2.100:PORT", mode, local)
		}
		local = clientLocal(t, s, "slirp4netns:bypass4netns=true", mode, srv.addr)
		if !strings.HasPrefix(local, host+":") {
			t.Errorf("%s connect with bypass4netns: local address %s, want the host's %s:PORT", mode, local, host)
		}
		if !srv.saw(local) {
			t.Errorf("%s connect with bypass4netns: the server did not see a connection from %s (it saw %v)", mode, local, srv.peers)
		}
	}
	closed := net.JoinHostPort(host, strconv.Itoa(freePort(t)))
	for _, mode := range []string{"block", "nonblock"} {
		r := s.nook(t, "run", "--rm", "--network", "slirp4netns:bypass4netns=true", "-v", bypassClientBuild.dir(t)+":/bpc:ro", "demo", "/bpc/bpc", mode, closed)
		assertExit(t, r, 1)
		assertContains(t, mode+" connect to a closed port", r.Stdout, "connection refused")
	}
}

// What is not the host's network stays in the container's: its loopback (both kinds of
// connect), and slirp4netns' gateway, which is the host's loopback only with
// allow_host_loopback=true — then the handler connects to 127.0.0.1 itself.
func TestNetworkBypassStaysInside(t *testing.T) {
	s := useMain(t)
	requireBypass(t, s)
	r := s.nook(t, "run", "--rm", "--network", "slirp4netns:bypass4netns=true", "-v", bypassClientBuild.dir(t)+":/bpc:ro", "demo", "/bpc/bpc", "self", "")
	if r.Code != 0 {
		t.Fatalf("connect inside the container: exit %d\n%s", r.Code, r)
	}
	lines := r.Lines()
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "block local 127.0.0.1:") || !strings.HasPrefix(lines[1], "nonblock local 127.0.0.1:") {
		t.Errorf("connects to the container's loopback: %q, want a block and a nonblock line from 127.0.0.1", lines)
	}

	srv := servePeers(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(srv.addr)
	gw := "10.0.2.2:" + port
	// slirp4netns --disable-host-loopback answers ENETUNREACH.
	for _, nw := range []string{"slirp4netns", "slirp4netns:bypass4netns=true"} {
		r = s.nook(t, "run", "--rm", "--network", nw, "-v", bypassClientBuild.dir(t)+":/bpc:ro", "demo", "/bpc/bpc", "block", gw)
		assertExit(t, r, 1)
		assertContains(t, "connect to the gateway without allow_host_loopback, --network "+nw, r.Stdout, "network is unreachable")
	}
	local := clientLocal(t, s, "slirp4netns:allow_host_loopback=true,bypass4netns=true", "nonblock", gw)
	if !strings.HasPrefix(local, "127.0.0.1:") || !srv.saw(local) {
		t.Errorf("connect to the gateway with allow_host_loopback: local address %s, want 127.0.0.1:PORT as the host's loopback server saw (it saw %v)", local, srv.peers)
	}
}

// askServer connects to the host's addr and returns the local and peer addresses the
// container's server reported for the connection, and the client's own local address.
func askServer(addr string) (local, peer, client string, err error) {
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err != nil {
		return "", "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 200)
	k, err := c.Read(b)
	f := strings.Fields(string(b[:k]))
	if len(f) != 4 || f[0] != "local" || f[2] != "peer" {
		return "", "", "", fmt.Errorf("server answered %q (%v)", b[:k], err)
	}
	return f[1], f[3], c.LocalAddr().String(), nil
}

// sameAddr compares host:port addresses, IPv4-mapped IPv6 or not.
func sameAddr(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	return err1 == nil && err2 == nil && pa == pb && net.ParseIP(ha) != nil && net.ParseIP(ha).Equal(net.ParseIP(hb))
}

// With bypass4netns=true a published TCP port is bound on the host when the container binds
// it: the container's server listens on the host's socket, so it sees the host client's own
// address and port as its peer and the host's address as its own (through nook's forwarder it
// would see 127.0.0.1 and its container port, the forwarder's connection inside the
// container). Covered: the reserved socket handed over as it is (an IPv4 server on a port
// published on 127.0.0.1; a dual-stack server on a port published on every address) and a new
// socket where the reserved one is of another kind (a dual-stack server, a port published on
// 127.0.0.1: an IPv6 socket bound to ::ffff:127.0.0.1).
func TestNetworkBypassPublish(t *testing.T) {
	s := useMain(t)
	requireBypass(t, s)
	p1, p2, p3 := freePort(t), freePort(t), freePort(t)
	for p2 == p1 || p3 == p1 || p3 == p2 {
		p2, p3 = freePort(t), freePort(t)
	}
	name := "bypass-publish"
	s.nook(t, "rm", "-f", name)
	t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
	s.mustNook(t, "run", "-d", "--name", name, "--network", "slirp4netns:bypass4netns=true",
		"-p", fmt.Sprintf("127.0.0.1:%d:80", p1), "-p", fmt.Sprintf("%d:81", p2), "-p", fmt.Sprintf("127.0.0.1:%d:82/tcp", p3),
		"-v", bypassClientBuild.dir(t)+":/bpc:ro", "demo", "/bpc/bpc", "serve", "tcp4:80,tcp:81,tcp:82")
	assertEqual(t, "nook port 80", s.mustNook(t, "port", name, "80").Stdout, fmt.Sprintf("127.0.0.1:%d\n", p1))
	for _, p := range []int{p1, p2, p3} {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		var local, peer, client string
		var err error
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if local, peer, client, err = askServer(addr); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("published %s: %v\n%s", addr, err, s.nook(t, "logs", name))
		}
		if !sameAddr(peer, client) || !sameAddr(local, addr) {
			t.Errorf("published %s: the server saw local %s peer %s, want local %s and the client's own %s (the host's socket, not the forwarder's)", addr, local, peer, addr, client)
		}
	}
	logs := s.mustNook(t, "logs", name).Stdout
	assertContains(t, "the server's own address of its IPv4 listener", logs, fmt.Sprintf("listening tcp4:80 127.0.0.1:%d", p1))
	// No nook process but the container's own holds the ports: stopping it frees them.
	s.mustNook(t, "rm", "-f", name)
	for _, p := range []int{p1, p2, p3} {
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("host port %d after the container was removed: %v", p, err)
			continue
		}
		l.Close()
	}
}

// A host port in use fails before the container starts, with one line, at run and at start
// (the starter binds the published host sockets before anything starts).
func TestNetworkBypassPublishInUse(t *testing.T) {
	s := useMain(t)
	requireBypass(t, s)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	r := s.nook(t, "run", "--rm", "--network", "slirp4netns:bypass4netns=true", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, fmt.Sprintf("host port %d/tcp is already in use", port))
	l.Close()

	name := "bypass-inuse"
	s.nook(t, "rm", "-f", name)
	t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
	s.mustNook(t, "create", "--name", name, "--network", "slirp4netns:bypass4netns=true", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "demo", "echo", "started")
	l, err = net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r = s.nook(t, "start", "-a", name)
	assertExit(t, r, 125)
	assertErrorLine(t, r, fmt.Sprintf("host port %d/tcp is already in use", port))
	if strings.Contains(r.Stdout, "started") {
		t.Errorf("the container ran although its host port was in use: %s", r)
	}
}

// bypassProcs are this user's bypass4netns handlers.
func bypassProcs() []int {
	var out []int
	for pid, cmd := range userProcs() {
		if strings.HasPrefix(cmd, "nook-bypass4netns ") {
			out = append(out, pid)
		}
	}
	return out
}

// parentOf is pid's parent, 0 when pid is gone.
func parentOf(pid int) int {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// The handler lives exactly as long as its container: none is left after it exits, nor after
// kill -9 of its process, in the foreground or detached (the monitor starts it), nor after
// kill -9 of the engine that started it.
func TestNetworkBypassHandlerLifetime(t *testing.T) {
	s := useMain(t)
	requireBypass(t, s)
	if left := bypassProcs(); len(left) > 0 {
		t.Fatalf("bypass4netns handlers %v run before the test", left)
	}
	assertGone := func(after string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); len(bypassProcs()) > 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("bypass4netns handlers %v still run 5 s after %s", bypassProcs(), after)
				return
			}
		}
	}
	s.mustNook(t, "run", "--rm", "--network", "slirp4netns:bypass4netns=true", "demo", "true")
	assertGone("a foreground container exited")

	// kill -9 of the container's process (foreground and detached), and of the engine that
	// started the handler (its parent-death signal).
	for i, victim := range []string{"container", "detached container", "engine"} {
		detached := victim == "detached container"
		arg := strconv.Itoa(600000 + os.Getpid()%300000 + i)
		name := fmt.Sprintf("bypasskill-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
		args := []string{"run", "--name", name, "--network", "slirp4netns:bypass4netns=true", "demo", "sleep", arg}
		if detached {
			args = append([]string{"run", "-d"}, args[1:]...)
		}
		cmd := s.command(ctx, nil, args...)
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
		ctrPid := findContainerProc(t, []string{"sleep", arg}, 30*time.Second)
		for deadline := time.Now().Add(10 * time.Second); len(bypassProcs()) == 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no bypass4netns handler runs for container %s", name)
			}
		}
		kill := ctrPid
		if victim == "engine" {
			kill = parentOf(bypassProcs()[0])
		}
		if err := syscall.Kill(kill, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		cancel()
		assertGone("kill -9 of the " + victim)
	}
}

// The option is refused where it cannot work, with one line that says so.
func TestNetworkBypassOptionErrors(t *testing.T) {
	s := useMain(t)
	requireSlirp(t)
	r := s.nook(t, "run", "--rm", "--network", "slirp4netns:bypass4netns=maybe", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "bypass4netns is true or false")
	if pastaUnusable() == "" {
		r = s.nook(t, "run", "--rm", "--network", "pasta:bypass4netns=true", "demo", "true")
		assertExit(t, r, 125)
		assertErrorLine(t, r, "bypass4netns works with slirp4netns only")
	}
}
