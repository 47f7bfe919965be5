package e2e

import (
	"context"
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

// slirpUnusable says why slirp4netns cannot work on this host ("" when it can), which is
// also when nook's default network is none.
func slirpUnusable() string {
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		return "slirp4netns is not installed (apt-get install slirp4netns)"
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return fmt.Sprintf("/dev/net/tun cannot be opened (%v); test/run-e2e.sh as root makes it 0666", err)
	}
	f.Close()
	return ""
}

// requireSlirp skips the test when slirp4netns cannot work on this host.
func requireSlirp(t *testing.T) {
	t.Helper()
	if why := slirpUnusable(); why != "" {
		skipf(t, "%s", why)
	}
}

// hostIPv4 is an address of this machine that is not loopback: slirp4netns closes the host's
// loopback to containers unless allow_host_loopback=true.
func hostIPv4(t *testing.T) string {
	t.Helper()
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
				return n.IP.String()
			}
		}
	}
	skipf(t, "this host has no non-loopback IPv4 address to serve the container from")
	return ""
}

// serveGreeting accepts TCP connections on addr (port 0: any) until the test ends, writes
// greeting to each and closes it; it returns the address. (The test image's busybox is static
// and its wget crashes without the NSS libraries, so the container uses nc.)
func serveGreeting(t *testing.T, addr, greeting string) string {
	t.Helper()
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, greeting+"\n")
			c.Close()
		}
	}()
	return l.Addr().String()
}

// freePort is a TCP port free on every address right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// slirpProcs are this user's slirp4netns processes, pid to parent pid.
func slirpProcs() map[int]int {
	out := map[int]int{}
	for pid, cmd := range userProcs() {
		if !strings.HasPrefix(cmd, "slirp4netns ") && !strings.Contains(cmd, "/slirp4netns ") {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
		if len(f) > 1 {
			out[pid], _ = strconv.Atoi(f[1])
		}
	}
	return out
}

// newSlirp waits for a slirp4netns that is not in before, and returns its pid and parent's.
func newSlirp(t *testing.T, before map[int]int) (pid, ppid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for p, pp := range slirpProcs() {
			if _, ok := before[p]; !ok {
				return p, pp
			}
		}
	}
	t.Fatalf("no slirp4netns process appeared for the container")
	return 0, 0
}

// assertSlirpGone fails when a slirp4netns not in before still exists after a grace period.
func assertSlirpGone(t *testing.T, before map[int]int, after string) {
	t.Helper()
	var left []int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left = left[:0]
		for p := range slirpProcs() {
			if _, ok := before[p]; !ok {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("slirp4netns %v still runs 5 s after %s", left, after)
	}
}

// Without --network, a container gets slirp4netns: tap0 at 10.0.2.100, the gateway 10.0.2.2,
// slirp4netns' resolver and its own name in /etc/hosts; nook info lists the backend.
func TestNetworkDefaultSlirp4netns(t *testing.T) {
	requireSlirp(t)
	s := useMain(t)
	info := s.mustNook(t, "info").Stdout
	assertMatch(t, "nook info", info, `(?m)^  backends: .*slirp4netns`)
	assertContains(t, "nook info", info, "# default: slirp4netns")

	before := slirpProcs()
	out := s.sh(t, `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' '; echo
ip -4 -o addr show tap0 | awk '{print $4}'
cat /sys/class/net/tap0/mtu
ip route | grep '^default' | awk '{print $3}'
grep '^nameserver' /etc/resolv.conf
grep -E "^10\.0\.2\.100[[:space:]]+$(hostname)\$" /etc/hosts | wc -l`)
	assertEqual(t, "interfaces, address, MTU, gateway, name server, hosts entry", out,
		"lo tap0 \n10.0.2.100/24\n65520\n10.0.2.2\nnameserver 10.0.2.3\n1\n")
	assertSlirpGone(t, before, "the container exited")
}

// The container reaches a TCP server on a host address; the host's loopback only with
// allow_host_loopback=true (as 10.0.2.2).
func TestNetworkOutboundTCP(t *testing.T) {
	requireSlirp(t)
	s := useMain(t)
	addr := serveGreeting(t, net.JoinHostPort(hostIPv4(t), "0"), "hello-from-host")
	host, port, _ := net.SplitHostPort(addr)
	out := s.sh(t, "nc -w 10 "+host+" "+port+" </dev/null")
	assertEqual(t, "nc from the container to "+addr, out, "hello-from-host\n")

	lo := serveGreeting(t, "127.0.0.1:0", "hello-from-loopback")
	_, port, _ = net.SplitHostPort(lo)
	r := s.nook(t, "run", "--rm", "demo", "nc", "-w", "3", "10.0.2.2", port)
	if r.Code == 0 || strings.Contains(r.Stdout, "hello") {
		t.Errorf("the host's loopback is reachable by default (nc 10.0.2.2 %s: exit %d, %q)", port, r.Code, r.Stdout)
	}
	out = s.sh(t, "nc -w 10 10.0.2.2 "+port+" </dev/null", "--network", "slirp4netns:allow_host_loopback=true")
	assertEqual(t, "nc 10.0.2.2 "+port+" with allow_host_loopback=true", out, "hello-from-loopback\n")
}

// UDP leaves the container too: busybox syslogd forwards a logger line to a host address.
func TestNetworkOutboundUDP(t *testing.T) {
	requireSlirp(t)
	s := useMain(t)
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(hostIPv4(t), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	s.sh(t, "syslogd -R "+pc.LocalAddr().String()+" && for i in 1 2 3 4 5; do logger hello-udp-$i; sleep 0.2; done")
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-got:
			if strings.Contains(m, "hello-udp-") {
				return
			}
		case <-timeout:
			t.Fatalf("no UDP datagram from the container reached %s", pc.LocalAddr())
		}
	}
}

// -p publishes a container's TCP port on the host, in Docker's forms.
func TestNetworkPublishTCP(t *testing.T) {
	requireSlirp(t)
	s := useMain(t)
	for _, form := range []string{"%d:80", "127.0.0.1:%d:80", "%d:80/tcp"} {
		port := freePort(t)
		spec := fmt.Sprintf(form, port)
		t.Run(spec, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
			defer cancel()
			cmd := s.command(ctx, nil, "run", "--rm", "-p", spec, "demo", "sh", "-c", "echo hello-published | nc -l -p 80")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// slirp4netns accepts on the host at once and closes when nothing listens in the
			// container yet: poll until the server answers.
			var got string
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && got == ""; time.Sleep(50 * time.Millisecond) {
				c, err := net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
				if err != nil {
					continue
				}
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				b, _ := io.ReadAll(c)
				c.Close()
				got = strings.TrimSpace(string(b))
			}
			err := cmd.Wait()
			t.Logf("stdout: %s\nstderr: %s", stdout.String(), stderr.String())
			assertEqual(t, "reply through -p "+spec, got, "hello-published")
			if err != nil {
				t.Errorf("nook run -p %s: %v", spec, err)
			}
		})
	}
}

// A host port that is taken fails before the container exists, exit 125.
func TestNetworkPortInUse(t *testing.T) {
	requireSlirp(t)
	s := useMain(t)
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	before := s.mustNook(t, "ps", "-a", "-q").Stdout
	r := s.nook(t, "run", "--rm", "-p", port+":80", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, port, "already in use")
	r = s.nook(t, "run", "--name", "inuse"+port, "-p", "127.0.0.1:"+port+":80", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, port, "already in use")
	assertEqual(t, "containers after the failed runs", s.mustNook(t, "ps", "-a", "-q").Stdout, before)
}

// A host port below net.ipv4.ip_unprivileged_port_start fails, naming the sysctl.
func TestNetworkLowPort(t *testing.T) {
	requireSlirp(t)
	s := useMain(t)
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	start, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if start <= 1 {
		skipf(t, "net.ipv4.ip_unprivileged_port_start is %d here: every port is unprivileged", start)
	}
	port := strconv.Itoa(start - 1)
	r := s.nook(t, "run", "--rm", "-p", port+":80", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, port, "net.ipv4.ip_unprivileged_port_start")
}

// --network none has only lo, and refuses -p.
func TestNetworkNone(t *testing.T) {
	s := useMain(t)
	out := s.sh(t, `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '`, "--network", "none")
	assertEqual(t, "interfaces with --network none", strings.TrimSpace(out), "lo")
	r := s.nook(t, "run", "--rm", "--network", "none", "-p", "8080:80", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "--network none")
	r = s.nook(t, "run", "--rm", "--network", "bridge", "demo", "true")
	assertExit(t, r, 125)
	assertErrorLine(t, r, "bridge", "not supported")
}

// slirp4netns lives exactly as long as its container: kill -9 of the container's PID 1, of
// nook, or of nook's engine (slirp4netns' parent) leaves none behind.
func TestNetworkHelperDiesWithContainer(t *testing.T) {
	requireSlirp(t)
	s := useMain(t)
	for _, victim := range []string{"container", "nook", "engine"} {
		t.Run(victim, func(t *testing.T) {
			arg := strconv.Itoa(600000 + os.Getpid()%300000)
			name := "slirpkill-" + victim
			ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
			defer cancel()
			before := slirpProcs()
			cmd := s.command(ctx, nil, "run", "--name", name, "-p", strconv.Itoa(freePort(t))+":80", "demo", "sleep", arg)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
			ctrPid := findContainerProc(t, []string{"sleep", arg}, 30*time.Second)
			_, engine := newSlirp(t, before)
			kill := map[string]int{"container": ctrPid, "nook": cmd.Process.Pid, "engine": engine}[victim]
			if err := syscall.Kill(kill, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 %d (%s): %v", kill, victim, err)
			}
			_ = cmd.Wait()
			t.Logf("nook: %v; stderr: %s", cmd.ProcessState, stderr.String())
			if victim == "container" {
				assertEqual(t, "exit code of nook", cmd.ProcessState.ExitCode(), 137)
			}
			assertSlirpGone(t, before, "kill -9 of the "+victim)
			for deadline := time.Now().Add(5 * time.Second); syscall.Kill(ctrPid, 0) == nil; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Errorf("the container's process %d outlived kill -9 of the %s", ctrPid, victim)
					break
				}
			}
		})
	}
}
