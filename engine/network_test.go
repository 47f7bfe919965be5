package engine

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nook-containers/nook/netuser"
	"github.com/nook-containers/nook/slirp"
)

func TestParsePublish(t *testing.T) {
	pm := func(ip string, host, ctr int, proto string) PortMapping {
		return PortMapping{HostIP: ip, HostPort: host, ContainerPort: ctr, Proto: proto}
	}
	cases := []struct {
		in   string
		want []PortMapping
		err  string // a word of the error; "" when it parses
	}{
		{"8080:80", []PortMapping{pm("", 8080, 80, "tcp")}, ""},
		{"127.0.0.1:8080:80", []PortMapping{pm("127.0.0.1", 8080, 80, "tcp")}, ""},
		{"8080:80/udp", []PortMapping{pm("", 8080, 80, "udp")}, ""},
		{"8080:80/tcp", []PortMapping{pm("", 8080, 80, "tcp")}, ""},
		{"80", []PortMapping{pm("", 0, 80, "tcp")}, ""},
		{"53/udp", []PortMapping{pm("", 0, 53, "udp")}, ""},
		{"127.0.0.1::80", []PortMapping{pm("127.0.0.1", 0, 80, "tcp")}, ""},
		{"0.0.0.0:443:443/tcp", []PortMapping{pm("0.0.0.0", 443, 443, "tcp")}, ""},
		{"65535:1", []PortMapping{pm("", 65535, 1, "tcp")}, ""},
		{"[::1]:8080:80", []PortMapping{pm("::1", 8080, 80, "tcp")}, ""},
		{"[fd00::2]::80/udp", []PortMapping{pm("fd00::2", 0, 80, "udp")}, ""},
		{"[::ffff:1.2.3.4]:1:2", nil, "IPv6"},
		{"8000-8002:80-82", []PortMapping{pm("", 8000, 80, "tcp"), pm("", 8001, 81, "tcp"), pm("", 8002, 82, "tcp")}, ""},
		{"127.0.0.1:8000-8001:80-81/udp", []PortMapping{pm("127.0.0.1", 8000, 80, "udp"), pm("127.0.0.1", 8001, 81, "udp")}, ""},
		{"80-81", []PortMapping{pm("", 0, 80, "tcp"), pm("", 0, 81, "tcp")}, ""},
		{"8000-8009:80", []PortMapping{{ContainerPort: 80, Proto: "tcp", hostRange: [2]int{8000, 8009}}}, ""},
		{"8080-8081:80-81", []PortMapping{pm("", 8080, 80, "tcp"), pm("", 8081, 81, "tcp")}, ""},
		{"8000-8002:80-81", nil, "host range has 3 ports"},
		{"82-80", nil, "ends before"},
		{"1-2000", nil, "more than"},
		{"", nil, "not a port"},
		{"0", nil, "not a port"},
		{"65536", nil, "not a port"},
		{"8080:0", nil, "container port"},
		{"0:80", nil, "host port"},
		{"-1:80", nil, "not a port"},
		{"+80", nil, "not a port"},
		{"abc", nil, "not a port"},
		{":80", nil, "host port is empty"},
		{"8080:80/sctp", nil, "tcp or udp"},
		{"8080:80/", nil, "tcp or udp"},
		{"localhost:8080:80", nil, "IPv4"},
		{"::1:8080:80", nil, "colons"},
		{"[::1]:80", nil, "HOST_PORT:CONTAINER_PORT"},
		{"[::1:8080:80", nil, "[ADDRESS]"},
		{"1.2.3.4:5:6:7", nil, "colons"},
		{"300.0.0.1:8080:80", nil, "IPv4"},
	}
	for _, c := range cases {
		got, err := parsePublish(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parsePublish(%q) = %+v, %v; want an error mentioning %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parsePublish(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func FuzzParsePublish(f *testing.F) {
	for _, s := range []string{"8080:80", "127.0.0.1:8080:80", "8080:80/udp", "80", "127.0.0.1::80", "[::1]:1:2", "1-2:3-4/tcp", "8000-8010:80", "[::]::9-10/udp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parsePublish(s)
		if err != nil {
			if ps != nil {
				t.Fatalf("parsePublish(%q) failed but returned %+v", s, ps)
			}
			return
		}
		if len(ps) == 0 || len(ps) > maxPortRange {
			t.Fatalf("parsePublish(%q): %d mappings", s, len(ps))
		}
		for i, p := range ps {
			if p.Proto != "tcp" && p.Proto != "udp" {
				t.Fatalf("parsePublish(%q): protocol %q", s, p.Proto)
			}
			if p.ContainerPort < 1 || p.ContainerPort > 65535 || p.HostPort < 0 || p.HostPort > 65535 {
				t.Fatalf("parsePublish(%q): ports out of range: %+v", s, p)
			}
			if r := p.hostRange; r != [2]int{} && (len(ps) != 1 || r[0] < 1 || r[1] > 65535 || r[0] > r[1] || p.HostPort != 0) {
				t.Fatalf("parsePublish(%q): host range %v with %d mappings", s, r, len(ps))
			}
			if p.HostIP != "" && net.ParseIP(p.HostIP) == nil {
				t.Fatalf("parsePublish(%q): host address %q", s, p.HostIP)
			}
			if i > 0 && (p.ContainerPort != ps[0].ContainerPort+i || (p.HostPort != 0 && p.HostPort != ps[0].HostPort+i)) {
				t.Fatalf("parsePublish(%q): mapping %d is %+v after %+v", s, i, p, ps[0])
			}
			if p.hostRange != [2]int{} {
				continue
			}
			// What parsed must read back the same from its canonical form.
			canon := strconv.Itoa(p.ContainerPort) + "/" + p.Proto
			if p.HostPort != 0 || p.HostIP != "" {
				host := ""
				if p.HostPort != 0 {
					host = strconv.Itoa(p.HostPort)
				}
				canon = host + ":" + canon
				if p.HostIP != "" {
					ip := p.HostIP
					if strings.Contains(ip, ":") {
						ip = "[" + ip + "]"
					}
					canon = ip + ":" + canon
				}
			}
			if q, err := parsePublish(canon); err != nil || len(q) != 1 || q[0] != p {
				t.Fatalf("parsePublish(%q) = %+v, but its form %q reads %+v, %v", s, p, canon, q, err)
			}
		}
	})
}

func TestFormatPorts(t *testing.T) {
	ps := []PortMapping{
		{HostPort: 8000, ContainerPort: 80, Proto: "tcp"}, {HostPort: 8001, ContainerPort: 81, Proto: "tcp"},
		{HostPort: 8002, ContainerPort: 82, Proto: "tcp"}, {HostPort: 8003, ContainerPort: 83, Proto: "udp"},
		{HostIP: "127.0.0.1", HostPort: 9000, ContainerPort: 90, Proto: "tcp"}, {HostIP: "::1", HostPort: 9001, ContainerPort: 91, Proto: "tcp"},
	}
	want := "0.0.0.0:8000-8002->80-82/tcp, 0.0.0.0:8003->83/udp, 127.0.0.1:9000->90/tcp, [::1]:9001->91/tcp"
	if got := FormatPorts(ps); got != want {
		t.Errorf("FormatPorts = %q, want %q", got, want)
	}
}

func TestExposedPorts(t *testing.T) {
	got, err := exposedPorts(map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8000-8001/tcp": {}})
	if err != nil {
		t.Fatal(err)
	}
	want := []PortMapping{{ContainerPort: 53, Proto: "udp"}, {ContainerPort: 80, Proto: "tcp"}, {ContainerPort: 8000, Proto: "tcp"}, {ContainerPort: 8001, Proto: "tcp"}}
	if !slices.Equal(got, want) {
		t.Errorf("exposedPorts = %+v, want %+v", got, want)
	}
	if _, err := exposedPorts(map[string]struct{}{"80/sctp": {}}); err == nil {
		t.Errorf("an exposed sctp port was accepted")
	}
	// -P: every exposed port gets a free host port; an explicit -p of one of them wins.
	n, err := netTestEngine(t).setupNetwork(NetSlirp, nil, []string{"127.0.0.1::80"}, true, map[string]struct{}{"80/tcp": {}, "53/udp": {}})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Ports) != 2 || n.Ports[0].HostIP != "127.0.0.1" || n.Ports[1].ContainerPort != 53 || n.Ports[1].HostPort == 0 {
		t.Errorf("-p 127.0.0.1::80 -P: %+v", n.Ports)
	}
}

func netTestEngine(t *testing.T) *Engine {
	return &Engine{Paths: Paths{GraphRoot: t.TempDir(), RunRoot: t.TempDir()}}
}

func TestParseUserNetwork(t *testing.T) {
	root := t.TempDir()
	if _, err := netuser.Create(root, netuser.CreateOptions{Name: "lab"}); err != nil {
		t.Fatal(err)
	}
	if _, err := netuser.Create(root, netuser.CreateOptions{Name: "closed", Internal: true}); err != nil {
		t.Fatal(err)
	}
	n, err := parseNetwork(root, "lab")
	if err != nil || n.Bridge != "lab" || (n.Mode != NetSlirp && n.Mode != NetNone) {
		t.Errorf("parseNetwork(lab) = %+v, %v; want a member of lab with slirp4netns or none outbound", n, err)
	}
	if n, err := parseNetwork(root, "closed"); err != nil || n.Bridge != "closed" || n.Mode != NetNone {
		t.Errorf("parseNetwork(closed) = %+v, %v; want a member of closed without outbound", n, err)
	}
	if _, err := parseNetwork(root, "nosuch"); err == nil || !strings.Contains(err.Error(), "network nosuch not found") {
		t.Errorf("parseNetwork(nosuch) = %v; want not found", err)
	}
	e := &Engine{Paths: Paths{GraphRoot: root}}
	if _, err := e.setupNetwork("slirp4netns", []string{"db"}, nil, false, nil); err == nil || !strings.Contains(err.Error(), "user network") {
		t.Errorf("--network-alias without a user network: %v", err)
	}
	n, err = e.setupNetwork("closed", []string{"db"}, []string{"127.0.0.1::80"}, false, nil)
	if err != nil || len(n.Ports) != 1 || len(n.Aliases) != 1 {
		t.Errorf("a port and an alias on an internal user network: %+v, %v", n, err)
	}
}

func TestParseNetwork(t *testing.T) {
	cases := []struct {
		in   string
		want network
		err  string
	}{
		{"none", network{Mode: NetNone}, ""},
		{"host", network{Mode: NetHost}, ""},
		{"slirp4netns", network{Mode: NetSlirp}, ""},
		{"slirp4netns:allow_host_loopback=true", network{Mode: NetSlirp, AllowHostLoopback: true}, ""},
		{"slirp4netns:allow_host_loopback=false", network{Mode: NetSlirp}, ""},
		{"slirp4netns:allow_host_loopback=yes", network{}, "true or false"},
		{"slirp4netns:mtu=1500", network{}, "not supported"},
		{"slirp4netns:", network{}, "not supported"},
		{"none:x", network{}, "no options"},
		{"bridge", network{}, "not supported"},
		{"slirp4netns:port_handler=slirp4netns", network{Mode: NetSlirp, PortHandler: "slirp4netns"}, ""},
		{"slirp4netns:port_handler=builtin,allow_host_loopback=true", network{Mode: NetSlirp, AllowHostLoopback: true}, ""},
		{"slirp4netns:port_handler=rootlesskit", network{}, "builtin or slirp4netns"},
		{"pasta:x", network{}, "not supported"},
	}
	for _, c := range cases {
		got, err := parseNetwork(t.TempDir(), c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseNetwork(t.TempDir(), %q) = %+v, %v; want an error mentioning %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got.Mode != c.want.Mode || got.AllowHostLoopback != c.want.AllowHostLoopback || got.PortHandler != c.want.PortHandler {
			t.Errorf("parseNetwork(t.TempDir(), %q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	if _, err := slirp.PastaAvailable(); err == nil {
		if n, err := parseNetwork(t.TempDir(), "pasta"); err != nil || n.Mode != NetPasta {
			t.Errorf("parseNetwork(t.TempDir(), pasta) = %+v, %v", n, err)
		}
	} else if _, err := parseNetwork(t.TempDir(), "pasta"); err == nil || !strings.Contains(err.Error(), "passt") {
		t.Errorf("parseNetwork(t.TempDir(), pasta) without pasta: %v, want an error naming the package", err)
	}
	// The default is one of the two, whatever this host has.
	if n, err := parseNetwork(t.TempDir(), ""); err != nil || (n.Mode != NetSlirp && n.Mode != NetNone) {
		t.Errorf("parseNetwork(t.TempDir(), \"\") = %+v, %v; want slirp4netns or none", n, err)
	}
}

func TestSetupNetworkPorts(t *testing.T) {
	if _, err := netTestEngine(t).setupNetwork(NetNone, nil, []string{"8080:80"}, false, nil); err == nil || !strings.Contains(err.Error(), "--network none") {
		t.Errorf("publishing with --network none: %v, want an error naming it", err)
	}
	if _, err := netTestEngine(t).setupNetwork(NetHost, nil, []string{"8080:80"}, false, nil); err == nil || !strings.Contains(err.Error(), "--network host") {
		t.Errorf("publishing with --network host: %v, want an error naming it", err)
	}
	// A free port is chosen for "80" and for "127.0.0.1::80".
	n, err := netTestEngine(t).setupNetwork(NetSlirp, nil, []string{"80", "127.0.0.1::81/udp"}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range n.Ports {
		if p.HostPort == 0 {
			t.Errorf("%+v: no host port chosen", p)
		}
	}
	// A port in use.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if _, err := netTestEngine(t).setupNetwork(NetSlirp, nil, []string{strconv.Itoa(port) + ":80"}, false, nil); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("publishing port %d in use: %v, want \"already in use\"", port, err)
	}
	// A host range: the first free port of it.
	n, err = netTestEngine(t).setupNetwork(NetSlirp, nil, []string{strconv.Itoa(port) + "-" + strconv.Itoa(port+1) + ":80"}, false, nil)
	if err == nil && (len(n.Ports) != 1 || n.Ports[0].HostPort != port+1) {
		t.Errorf("-p %d-%d:80 with %d taken: %+v", port, port+1, port, n.Ports)
	} else if err != nil {
		t.Logf("port %d is taken too: %v", port+1, err)
	}
	// The same host port twice.
	if _, err := netTestEngine(t).setupNetwork(NetSlirp, nil, []string{"40001:80", "40001:81"}, false, nil); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("publishing a port twice: %v", err)
	}
	// Below the unprivileged range (1024 unless the host changed it).
	if start := unprivilegedPortStart(); start > 1 {
		_, err := netTestEngine(t).setupNetwork(NetSlirp, nil, []string{strconv.Itoa(start-1) + ":80"}, false, nil)
		if err == nil || !strings.Contains(err.Error(), "net.ipv4.ip_unprivileged_port_start") {
			t.Errorf("publishing port %d: %v, want an error naming the sysctl", start-1, err)
		}
	}
}

func TestResolvForSlirp(t *testing.T) {
	host := "search lan\nnameserver 127.0.0.53\nnameserver 192.0.2.1\noptions edns0\n"
	want := "nameserver 10.0.2.3\nsearch lan\noptions edns0\n"
	if got := resolvForContainer(host, NetSlirp); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestResolvForPasta(t *testing.T) {
	host := "search lan\nnameserver 127.0.0.53\noptions edns0\n"
	want := "nameserver " + slirp.PastaDNS + "\nsearch lan\noptions edns0\n"
	if got := resolvForContainer(host, NetPasta); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
