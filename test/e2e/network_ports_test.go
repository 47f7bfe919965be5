package e2e

import (
	"bufio"
	"errors"
	"fmt"
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

// netHelperSrc is a static program for the container side of the port tests: the test
// image's busybox has no UDP server and its nc does not say who connected.
const netHelperSrc = `package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	addr := "0.0.0.0:" + os.Args[2]
	switch os.Args[1] {
	case "udpecho": // reply "echo FROM MESSAGE" to every datagram
		pc, err := net.ListenPacket("udp4", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				os.Exit(1)
			}
			pc.WriteTo([]byte("echo "+from.String()+" "+string(buf[:n])), from)
		}
	case "tcppeer": // write "peer ADDRESS" to every connection and close it
		serveTCP(addr, func(c net.Conn) {
			fmt.Fprintf(c, "peer %s\n", c.RemoteAddr())
			c.Close()
		})
	case "tcpecho": // echo every connection's bytes back until its end
		serveTCP(addr, func(c net.Conn) { go func() { io.Copy(c, c); c.Close() }() })
	}
}

// serveTCP listens on addr and hands every connection to handle; it exits the helper program
// when it cannot listen or accept.
func serveTCP(addr string, handle func(net.Conn)) {
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		handle(c)
	}
}
`

var netHelperBuild = staticHelper{name: "nh", src: netHelperSrc}

// netHelper builds netHelperSrc once (CGO_ENABLED=0, static) into a directory the tests
// bind-mount at /nh; it returns that directory.
func netHelper(t *testing.T) string { return netHelperBuild.dir(t) }

// pastaUnusable says why pasta cannot work here ("" when it can).
func pastaUnusable() string {
	if _, err := exec.LookPath("pasta"); err != nil {
		return "pasta is not installed (apt-get install passt)"
	}
	return slirpUnusable() // the same /dev/net/tun
}

// portBackends are the ways nook publishes ports on this host, as --network values.
func portBackends(t *testing.T) []string {
	t.Helper()
	requireSlirp(t)
	nets := []string{"slirp4netns", "slirp4netns:port_handler=slirp4netns"}
	if why := pastaUnusable(); why == "" {
		nets = append(nets, "pasta")
	} else {
		t.Logf("pasta is not tested: %s", why)
	}
	return nets
}

// runDetached starts a detached container and removes it when the test ends.
func (s *store) runDetached(t *testing.T, name string, args ...string) {
	t.Helper()
	r := s.nook(t, append([]string{"run", "-d", "--name", name}, args...)...)
	if r.Code != 0 {
		t.Fatalf("nook run -d %v: exit %d\n%s", args, r.Code, r)
	}
	t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
}

// dialUntil connects to addr until the reply (read to EOF) is not empty, for up to 20 s: a
// forwarder accepts at once and closes while nothing listens in the container yet.
func dialUntil(t *testing.T, network, addr string) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if s := strings.TrimSpace(string(b)); s != "" {
			return s
		}
	}
	t.Errorf("no reply from %s over %s within 20 s", addr, network)
	return ""
}

// udpUntil sends msg to addr until a reply comes, for up to 20 s.
func udpUntil(t *testing.T, network, addr, msg string) string {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if _, err := c.Write([]byte(msg)); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			return string(buf[:n])
		}
	}
	t.Errorf("no UDP reply from %s within 20 s", addr)
	return ""
}

// freeUDPPort is a UDP port free on every address right now.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// assertPortFreed fails when network/port cannot be bound again within 5 s: whatever
// forwarded it is still there.
func assertPortFreed(t *testing.T, network string, port int, after string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.HasPrefix(network, "udp") {
			var c net.PacketConn
			if c, err = net.ListenPacket(network, ":"+strconv.Itoa(port)); err == nil {
				c.Close()
				return
			}
		} else {
			var l net.Listener
			if l, err = net.Listen(network, ":"+strconv.Itoa(port)); err == nil {
				l.Close()
				return
			}
		}
	}
	t.Errorf("host port %d/%s still taken 5 s after %s: %v", port, network, after, err)
}

// -p PORT:PORT/udp: a datagram reaches a UDP server in the container and its reply comes back,
// for every backend; the port is free again once the container is removed.
func TestNetworkPublishUDP(t *testing.T) {
	s := useMain(t)
	nh := netHelper(t)
	for i, nw := range portBackends(t) {
		t.Run(nw, func(t *testing.T) {
			port := freeUDPPort(t)
			name := fmt.Sprintf("udp%d", i)
			// slirp4netns' own forwarder delivers datagrams sent to the host's loopback but
			// its replies never come back (libslirp): it is tested on the host's address only.
			// The pasta of Debian 12 (passt 2023-03) loses the replies of a UDP port published
			// under another number, and of datagrams sent to the host's own address: it is
			// tested with equal ports, on the loopback.
			addrs, cport := []string{hostIPv4(t)}, "5353"
			switch nw {
			case "slirp4netns":
				addrs = append(addrs, "127.0.0.1")
			case "pasta":
				addrs, cport = []string{"127.0.0.1"}, strconv.Itoa(port)
			}
			s.runDetached(t, name, "--network", nw, "-v", nh+":/nh:ro", "-p", strconv.Itoa(port)+":"+cport+"/udp", "demo", "/nh/nh", "udpecho", cport)
			for _, a := range addrs {
				got := udpUntil(t, "udp4", net.JoinHostPort(a, strconv.Itoa(port)), "hello-udp")
				if !strings.HasPrefix(got, "echo ") || !strings.HasSuffix(got, " hello-udp") {
					t.Errorf("UDP reply through -p %d:5353/udp to %s: %q", port, a, got)
				}
				if f := strings.Fields(got); len(f) > 1 {
					t.Logf("sent to %s, the container saw the datagram from %s", a, f[1])
				}
			}
			s.mustNook(t, "rm", "-f", name)
			assertPortFreed(t, "udp4", port, "nook rm -f")
		})
	}
}

// The source address a published TCP connection has in the container: 127.0.0.1 with nook's
// forwarder (the connection is made on the container's loopback), slirp4netns' gateway
// 10.0.2.2 with its own forwarder; with pasta it is logged.
func TestNetworkPublishSourceAddress(t *testing.T) {
	s := useMain(t)
	nh := netHelper(t)
	want := map[string]string{"slirp4netns": "peer 127.0.0.1:", "slirp4netns:port_handler=slirp4netns": "peer 10.0.2.2:"}
	for i, nw := range portBackends(t) {
		t.Run(nw, func(t *testing.T) {
			port := freePort(t)
			s.runDetached(t, fmt.Sprintf("peer%d", i), "--network", nw, "-v", nh+":/nh:ro", "-p", strconv.Itoa(port)+":80", "demo", "/nh/nh", "tcppeer", "80")
			got := dialUntil(t, "tcp4", "127.0.0.1:"+strconv.Itoa(port))
			t.Logf("%s: %s", nw, got)
			if w, ok := want[nw]; ok && !strings.HasPrefix(got, w) {
				t.Errorf("the container saw %q, want %s...", got, w)
			}
		})
	}
}

// Port ranges: -p H-H+2:80-82 publishes three ports one to one; PORTS in nook ps shows the
// range as Docker does, and nook port lists each.
func TestNetworkPublishRange(t *testing.T) {
	requireSlirp(t)
	s := useMain(t)
	var base int
	for try := 0; try < 20 && base == 0; try++ {
		p := freePort(t)
		ok := p+2 <= 65535
		for i := 1; i <= 2 && ok; i++ {
			if l, err := net.Listen("tcp", ":"+strconv.Itoa(p+i)); err == nil {
				l.Close()
			} else {
				ok = false
			}
		}
		if ok {
			base = p
		}
	}
	if base == 0 {
		t.Fatal("found no three consecutive free ports")
	}
	spec := fmt.Sprintf("%d-%d:80-82", base, base+2)
	s.runDetached(t, "ranged", "-p", spec, "demo", "sh", "-c", "for p in 80 81 82; do (while true; do echo r$p | nc -l -p $p; done) & done; wait")
	for i := 0; i < 3; i++ {
		got := dialUntil(t, "tcp4", "127.0.0.1:"+strconv.Itoa(base+i))
		assertEqual(t, fmt.Sprintf("reply on host port %d", base+i), got, fmt.Sprintf("r%d", 80+i))
	}
	ps := s.mustNook(t, "ps").Stdout
	assertContains(t, "nook ps", ps, fmt.Sprintf("0.0.0.0:%d-%d->80-82/tcp", base, base+2))
	assertEqual(t, "nook port ranged 81", s.mustNook(t, "port", "ranged", "81").Stdout, fmt.Sprintf("0.0.0.0:%d\n", base+1))
	assertEqual(t, "nook port ranged", s.mustNook(t, "port", "ranged").Stdout,
		fmt.Sprintf("80/tcp -> 0.0.0.0:%d\n81/tcp -> 0.0.0.0:%d\n82/tcp -> 0.0.0.0:%d\n", base, base+1, base+2))
	r := s.nook(t, "run", "--rm", "-p", "8000-8002:80-81", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "8000-8002:80-81", "range")
}

// -P publishes the image's EXPOSEd ports (TCP and UDP) on free host ports; nook port and
// nook ps show them, and they work.
func TestNetworkPublishAll(t *testing.T) {
	requireSlirp(t)
	s := useMain(t)
	nh := netHelper(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM demo\nEXPOSE 80 5353/udp\n"})
	s.mustBuild(t, dir, "-t", "exposing")
	t.Cleanup(func() { s.nook(t, "rmi", "-f", "exposing") })
	s.runDetached(t, "publishall", "-P", "-v", nh+":/nh:ro", "exposing", "sh", "-c", "/nh/nh udpecho 5353 & /nh/nh tcppeer 80")
	tcp := strings.TrimSpace(s.mustNook(t, "port", "publishall", "80/tcp").Stdout)
	udp := strings.TrimSpace(s.mustNook(t, "port", "publishall", "5353/udp").Stdout)
	assertMatch(t, "nook port publishall 80/tcp", tcp, `^0\.0\.0\.0:[0-9]+$`)
	assertMatch(t, "nook port publishall 5353/udp", udp, `^0\.0\.0\.0:[0-9]+$`)
	_, tport, _ := net.SplitHostPort(tcp)
	_, uport, _ := net.SplitHostPort(udp)
	assertContains(t, "reply through -P", dialUntil(t, "tcp4", "127.0.0.1:"+tport), "peer ")
	assertContains(t, "UDP reply through -P", udpUntil(t, "udp4", "127.0.0.1:"+uport, "hello-P"), "hello-P")
	ps := s.mustNook(t, "ps").Stdout
	assertContains(t, "nook ps", ps, "0.0.0.0:"+tport+"->80/tcp")
	assertContains(t, "nook ps", ps, "0.0.0.0:"+uport+"->5353/udp")
}

// IPv6: -p [::1]:PORT:80 listens on the host's IPv6 loopback, and -p PORT:80 on both families.
func TestNetworkPublishIPv6(t *testing.T) {
	requireSlirp(t)
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		skipf(t, "this host has no IPv6 loopback: %v", err)
	} else {
		l.Close()
	}
	s := useMain(t)
	nh := netHelper(t)
	p1, p2 := freePort(t), freePort(t)
	s.runDetached(t, "v6", "-v", nh+":/nh:ro", "-p", fmt.Sprintf("[::1]:%d:80", p1), "-p", fmt.Sprintf("%d:80", p2), "demo", "/nh/nh", "tcppeer", "80")
	assertContains(t, "reply on [::1]:"+strconv.Itoa(p1), dialUntil(t, "tcp6", fmt.Sprintf("[::1]:%d", p1)), "peer 127.0.0.1:")
	assertContains(t, "reply on [::1]:"+strconv.Itoa(p2), dialUntil(t, "tcp6", fmt.Sprintf("[::1]:%d", p2)), "peer 127.0.0.1:")
	assertContains(t, "reply on 127.0.0.1:"+strconv.Itoa(p2), dialUntil(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", p2)), "peer 127.0.0.1:")
	assertEqual(t, "nook port v6", s.mustNook(t, "port", "v6").Stdout, fmt.Sprintf("80/tcp -> [::1]:%d\n80/tcp -> 0.0.0.0:%d\n", p1, p2))
}

// A host port another container publishes fails the second run with 125 before it starts;
// once the first is removed the port can be published again.
func TestNetworkPortConflictBetweenContainers(t *testing.T) {
	s := useMain(t)
	for i, nw := range portBackends(t) {
		t.Run(nw, func(t *testing.T) {
			port := strconv.Itoa(freePort(t))
			name := fmt.Sprintf("holder%d", i)
			s.runDetached(t, name, "--network", nw, "-p", port+":80", "demo", "sleep", "600")
			before := s.mustNook(t, "ps", "-a", "-q").Stdout
			r := s.nook(t, "run", "--rm", "--network", nw, "-p", port+":81", "demo", "true")
			assertExit(t, r, 125)
			assertErrorLine(t, r, port, "already in use")
			assertEqual(t, "containers after the failed run", s.mustNook(t, "ps", "-a", "-q").Stdout, before)
			s.mustNook(t, "rm", "-f", name)
			assertPortFreed(t, "tcp", mustAtoi(port), "nook rm -f "+name)
		})
	}
}

func mustAtoi(s string) int { n, _ := strconv.Atoi(s); return n }

// pastaProcs are this user's pasta processes.
func pastaProcs() map[int]bool {
	out := map[int]bool{}
	for pid, cmd := range userProcs() {
		if strings.HasPrefix(cmd, "pasta ") || strings.Contains(cmd, "/pasta ") {
			out[pid] = true
		}
	}
	return out
}

// hostGateway is this host's IPv4 default gateway, which pasta gives the container too.
func hostGateway(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/net/route")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) > 2 && fl[1] == "00000000" {
			g, err := strconv.ParseUint(fl[2], 16, 32)
			if err == nil && g != 0 {
				return net.IPv4(byte(g), byte(g>>8), byte(g>>16), byte(g>>24)).String()
			}
		}
	}
	skipf(t, "this host has no IPv4 default gateway, which pasta needs")
	return ""
}

// --network pasta: nook info lists it; the container has the host's address and a working
// name server entry; the host's loopback is closed unless allow_host_loopback=true (then it
// is the gateway address); published TCP works; pasta lives as long as the container.
func TestNetworkPasta(t *testing.T) {
	if why := pastaUnusable(); why != "" {
		skipf(t, "%s", why)
	}
	s := useMain(t)
	assertMatch(t, "nook info", s.mustNook(t, "info").Stdout, `(?m)^  backends: .*pasta`)
	before := pastaProcs()
	out := s.sh(t, `grep -c "$(hostname)" /etc/hosts; grep nameserver /etc/resolv.conf; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' '`, "--network", "pasta")
	assertEqual(t, "hosts entry, name server, interfaces", out, "1\nnameserver 169.254.1.1\n"+pastaIfaces())

	gw := hostGateway(t)
	lo := serveGreeting(t, "127.0.0.1:0", "hello-from-loopback")
	_, port, _ := net.SplitHostPort(lo)
	// sh stays PID 1: a signal from timeout would not end a PID 1 without a handler.
	r := s.nook(t, "run", "--rm", "--network", "pasta", "demo", "sh", "-c", "timeout 5 nc "+gw+" "+port+"; true")
	if strings.Contains(r.Stdout, "hello") {
		t.Errorf("the host's loopback is reachable through pasta by default (nc %s %s: %q)", gw, port, r.Stdout)
	}
	// This pasta does not pass the server's close on (nc would wait for ever): timeout ends it.
	// What is checked is that the loopback is reachable. This pasta (passt 2023-03, Debian 12)
	// sometimes delivers the greeting twice on a loaded machine (a retransmission it passes on):
	// its stream's fidelity is pasta's, so repeats of the one line are accepted, anything else not.
	out = s.sh(t, "timeout 5 nc "+gw+" "+port+" </dev/null 2>/dev/null; true", "--network", "pasta:allow_host_loopback=true")
	if strings.Count(out, "hello-from-loopback\n") == 0 || strings.ReplaceAll(out, "hello-from-loopback\n", "") != "" {
		t.Errorf("nc %s %s with allow_host_loopback=true: got %q, want the greeting", gw, port, out)
	}

	hp := freePort(t)
	s.runDetached(t, "pastaweb", "--network", "pasta", "-p", strconv.Itoa(hp)+":80", "demo", "sh", "-c", "while true; do echo hello-pasta | nc -l -p 80; done")
	assertEqual(t, "reply through pasta's -p", dialUntil(t, "tcp4", "127.0.0.1:"+strconv.Itoa(hp)), "hello-pasta")
	s.mustNook(t, "rm", "-f", "pastaweb")
	assertPortFreed(t, "tcp", hp, "nook rm -f pastaweb")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var left []int
		for p := range pastaProcs() {
			if !before[p] {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("pasta %v still runs after its containers ended", left)
			break
		}
	}
}

// pastaIfaces is what a pasta container's /proc/net/dev lists: lo and a copy of the host's
// interface of the default route.
func pastaIfaces() string {
	b, _ := os.ReadFile("/proc/net/route")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == "00000000" {
			ifs := []string{"lo", f[0]}
			if f[0] < "lo" {
				ifs = []string{f[0], "lo"}
			}
			return strings.Join(ifs, " ") + " "
		}
	}
	return "lo "
}

// Published ports and their helpers live exactly as long as the container, whatever ends it:
// after kill -9 of the container's process, of nook (foreground), or of a detached container's
// monitor, the host port is free again and no slirp4netns or pasta is left.
func TestNetworkForwarderDiesWithContainer(t *testing.T) {
	s := useMain(t)
	for _, nw := range portBackends(t) {
		for _, victim := range []string{"container", "nook", "monitor"} {
			t.Run(nw+"/"+victim, func(t *testing.T) {
				arg := strconv.Itoa(600000 + os.Getpid()%300000)
				port := freePort(t)
				name := "fwdkill-" + victim
				beforeSlirp, beforePasta := slirpProcs(), pastaProcs()
				var cmd *exec.Cmd
				if victim == "monitor" {
					s.runDetached(t, name, "--network", nw, "-p", strconv.Itoa(port)+":80", "demo", "sleep", arg)
				} else {
					cmd = s.command(t.Context(), nil, "run", "--name", name, "--network", nw, "-p", strconv.Itoa(port)+":80", "demo", "sleep", arg)
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
				}
				ctrPid := findContainerProc(t, []string{"sleep", arg}, 30*time.Second)
				// The port is served while the container runs.
				if l, err := net.Listen("tcp", ":"+strconv.Itoa(port)); err == nil {
					l.Close()
					t.Fatalf("host port %d is not bound while the container runs", port)
				}
				kill := ctrPid
				switch victim {
				case "nook":
					kill = cmd.Process.Pid
				case "monitor":
					kill = parentPid(t, ctrPid)
				}
				if err := syscall.Kill(kill, syscall.SIGKILL); err != nil {
					t.Fatalf("kill -9 %d (%s): %v", kill, victim, err)
				}
				if cmd != nil {
					_ = cmd.Wait()
				}
				assertPortFreed(t, "tcp", port, "kill -9 of the "+victim)
				assertSlirpGone(t, beforeSlirp, "kill -9 of the "+victim)
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					var left []int
					for p := range pastaProcs() {
						if !beforePasta[p] {
							left = append(left, p)
						}
					}
					if len(left) == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("pasta %v still runs 5 s after kill -9 of the %s", left, victim)
						break
					}
				}
			})
		}
	}
}

// parentPid is pid's parent.
func parentPid(t *testing.T, pid int) int {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
