package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/nook-containers/nook/bypass"
	"github.com/nook-containers/nook/netuser"
	"github.com/nook-containers/nook/slirp"
	"github.com/nook-containers/nook/userns"
)

// Network modes of `nook run --network`.
const (
	NetNone  = "none"
	NetHost  = "host"
	NetSlirp = "slirp4netns"
	NetPasta = "pasta"
)

// network is a container's parsed --network and --publish.
type network struct {
	Mode              string // NetNone, NetHost, NetSlirp or NetPasta
	AllowHostLoopback bool   // slirp4netns:allow_host_loopback=true
	// PortHandler is who forwards published ports with slirp4netns: "" (nook's own
	// forwarder, slirp.PortHandlerBuiltin) or slirp.PortHandlerSlirp4netns.
	PortHandler string `json:",omitempty"`
	// Bypass is slirp4netns:bypass4netns=true: TCP connections to the host's network are made
	// in the host's network namespace (package bypass).
	Bypass bool `json:",omitempty"`
	Ports  []PortMapping
	// Bridge is the user network (netuser) the container is a member of, "" for none; Mode is
	// then its outbound network: slirp4netns, or none for an internal network.
	Bridge  string   `json:",omitempty"`
	Aliases []string `json:",omitempty"` // --network-alias
	// Container is the ID of the container whose network namespace this one joins
	// (--network container:NAME, Mode NetContainer).
	Container string `json:",omitempty"`

	member *netuser.Member // set by prepare for a member of Bridge
}

// PortMapping is one -p/--publish.
type PortMapping struct {
	HostIP        string // "" is every address
	HostPort      int    // 0 until chosen: a free port is picked when the container is created
	ContainerPort int
	Proto         string // tcp or udp

	hostRange [2]int // -p START-END:PORT: the host port is the first of these that binds
}

func (p PortMapping) String() string {
	return fmt.Sprintf("%s:%d->%d/%s", displayIP(p.HostIP), p.HostPort, p.ContainerPort, p.Proto)
}

func displayIP(ip string) string {
	switch {
	case ip == "":
		return "0.0.0.0"
	case strings.Contains(ip, ":"):
		return "[" + ip + "]"
	}
	return ip
}

// FormatPorts renders published ports as Docker's PORTS column does: consecutive ports of one
// address and protocol as a range, "0.0.0.0:8000-8002->80-82/tcp".
func FormatPorts(ports []PortMapping) string {
	var out []string
	for i := 0; i < len(ports); {
		p := ports[i]
		j := i + 1
		for j < len(ports) && ports[j].HostIP == p.HostIP && ports[j].Proto == p.Proto &&
			ports[j].HostPort == p.HostPort+(j-i) && ports[j].ContainerPort == p.ContainerPort+(j-i) {
			j++
		}
		if j-i == 1 {
			out = append(out, p.String())
		} else {
			last := ports[j-1]
			out = append(out, fmt.Sprintf("%s:%d-%d->%d-%d/%s", displayIP(p.HostIP), p.HostPort, last.HostPort, p.ContainerPort, last.ContainerPort, p.Proto))
		}
		i = j
	}
	return strings.Join(out, ", ")
}

// defaultNetwork is slirp4netns where it can work, none otherwise (nook info says why).
func defaultNetwork() string {
	if _, err := slirp.Available(); err == nil {
		return NetSlirp
	}
	return NetNone
}

// parseNetwork reads --network: none, host, pasta[:allow_host_loopback=true|false],
// slirp4netns[:allow_host_loopback=true|false,port_handler=builtin|slirp4netns,bypass4netns=true|false], or the name of
// a user network (recorded under graphRoot). "" is the default.
func parseNetwork(graphRoot, s string) (network, error) {
	if s == "" {
		s = defaultNetwork()
	}
	if !netuser.IsReserved(s) {
		rec, err := netuser.Load(graphRoot, s)
		if err != nil {
			if errors.Is(err, netuser.ErrNotFound) {
				return network{}, fmt.Errorf("network %s not found: create it with `nook network create %s`, or use slirp4netns, pasta, none or host", s, s)
			}
			return network{}, err
		}
		// Outbound traffic goes through the member's own slirp4netns, as without a user
		// network; the bridge carries the network's subnet only.
		mode := defaultNetwork()
		if rec.Internal {
			mode = NetNone
		}
		return network{Mode: mode, Bridge: rec.Name}, nil
	}
	mode, opts, hasOpts := strings.Cut(s, ":")
	switch mode {
	case NetNone, NetHost:
		if hasOpts {
			return network{}, fmt.Errorf("network %q takes no options", mode)
		}
		return network{Mode: mode}, nil
	case NetPasta:
		if _, err := slirp.PastaAvailable(); err != nil {
			return network{}, fmt.Errorf("network pasta cannot be used here: %w", err)
		}
	case NetSlirp:
	default:
		return network{}, fmt.Errorf("network %q is not supported: use slirp4netns, pasta, none or host", s)
	}
	n := network{Mode: mode}
	if !hasOpts {
		return n, nil
	}
	for _, opt := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "allow_host_loopback":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return network{}, fmt.Errorf("network option %q: allow_host_loopback is true or false", opt)
			}
			n.AllowHostLoopback = b
		case "port_handler":
			if mode == NetPasta {
				return network{}, fmt.Errorf("network option %q: pasta forwards ports itself", opt)
			}
			switch v {
			case slirp.PortHandlerBuiltin:
				n.PortHandler = ""
			case slirp.PortHandlerSlirp4netns:
				n.PortHandler = v
			default:
				return network{}, fmt.Errorf("network option %q: port_handler is builtin or slirp4netns", opt)
			}
		case "bypass4netns":
			if mode == NetPasta {
				return network{}, fmt.Errorf("network option %q: bypass4netns works with slirp4netns only (--network slirp4netns:bypass4netns=true)", opt)
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return network{}, fmt.Errorf("network option %q: bypass4netns is true or false", opt)
			}
			if b {
				if err := bypass.Supported(); err != nil {
					return network{}, fmt.Errorf("network option %q cannot work here: %w", opt, err)
				}
			}
			n.Bypass = b
		default:
			if mode == NetPasta {
				return network{}, fmt.Errorf("network option %q is not supported: pasta takes allow_host_loopback=true", opt)
			}
			return network{}, fmt.Errorf("network option %q is not supported: slirp4netns takes allow_host_loopback=true, port_handler=builtin|slirp4netns and bypass4netns=true", opt)
		}
	}
	return n, nil
}

// maxPortRange bounds the ports one -p may publish.
const maxPortRange = 1024

// parsePublish reads Docker's -p forms: CPORT, HPORT:CPORT, IP:HPORT:CPORT and IP::CPORT, each
// with an optional /tcp or /udp, where a port may be a range (START-END) and IP may be an IPv6
// address in brackets. Equal ranges map one to one; a host range with a single container port
// means any one free port of that range (Docker's reading); a container range with no host
// port gets a free host port each. The host ports are 0 where nook will choose.
func parsePublish(s string) ([]PortMapping, error) {
	bad := func(why string) ([]PortMapping, error) {
		return nil, fmt.Errorf("invalid port specification %q: %s (use [[IP:][HOST_PORT]:]CONTAINER_PORT[/tcp|/udp])", s, why)
	}
	proto := "tcp"
	spec := s
	if i := strings.LastIndexByte(spec, '/'); i >= 0 {
		proto = spec[i+1:]
		spec = spec[:i]
		if proto != "tcp" && proto != "udp" {
			return bad("the protocol is tcp or udp")
		}
	}
	var ip string
	if strings.HasPrefix(spec, "[") {
		end := strings.Index(spec, "]:")
		if end < 0 {
			return bad("an IPv6 host address is written [ADDRESS]:HOST_PORT:CONTAINER_PORT")
		}
		a := net.ParseIP(spec[1:end])
		if a == nil || a.To4() != nil {
			return bad("the host address must be an IPv6 address in brackets")
		}
		ip, spec = a.String(), spec[end+2:]
		if strings.Count(spec, ":") != 1 {
			return bad("an IPv6 host address needs HOST_PORT:CONTAINER_PORT after it")
		}
		spec = ":" + spec // the address part is done: pretend an empty one
	}
	parts := strings.Split(spec, ":")
	var host, ctr string
	switch len(parts) {
	case 1:
		ctr = parts[0]
	case 2:
		host, ctr = parts[0], parts[1]
		if host == "" {
			return bad("the host port is empty")
		}
	case 3:
		host, ctr = parts[1], parts[2]
		if ip == "" {
			a := net.ParseIP(parts[0])
			if a == nil || a.To4() == nil {
				return bad("the host address must be an IPv4 address, or an IPv6 one in brackets")
			}
			ip = a.To4().String()
		}
	default:
		return bad("too many colons (an IPv6 host address goes in brackets)")
	}
	if ip != "" && len(parts) == 2 {
		// [::1]:HOST:CTR became ":HOST:CTR" above, three parts; two means [::1]:CTR.
		return bad("an IPv6 host address needs HOST_PORT:CONTAINER_PORT after it")
	}
	cLo, cHi, err := parsePortRange(ctr, "the container port")
	if err != nil {
		return bad(err.Error())
	}
	hLo, hHi := 0, 0
	if host != "" {
		if hLo, hHi, err = parsePortRange(host, "the host port"); err != nil {
			return bad(err.Error())
		}
	}
	n := cHi - cLo + 1
	var out []PortMapping
	switch {
	case host == "" || hHi-hLo+1 == n:
		for i := 0; i < n; i++ {
			p := PortMapping{HostIP: ip, ContainerPort: cLo + i, Proto: proto}
			if host != "" {
				p.HostPort = hLo + i
			}
			out = append(out, p)
		}
	case n == 1:
		// Any free port of the host range: the first that binds, chosen by checkHostPort.
		out = append(out, PortMapping{HostIP: ip, ContainerPort: cLo, Proto: proto, hostRange: [2]int{hLo, hHi}})
	default:
		return bad(fmt.Sprintf("the host range has %d ports and the container range %d", hHi-hLo+1, n))
	}
	return out, nil
}

// parsePortRange reads PORT or START-END.
func parsePortRange(v, what string) (int, int, error) {
	one := func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 || v[0] == '+' {
			return 0, fmt.Errorf("%s %q is not a port number (1-65535)", what, v)
		}
		return n, nil
	}
	lo, hi, isRange := strings.Cut(v, "-")
	a, err := one(lo)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return a, a, nil
	}
	b, err := one(hi)
	if err != nil {
		return 0, 0, err
	}
	if b < a {
		return 0, 0, fmt.Errorf("%s range %q ends before it starts", what, v)
	}
	if b-a >= maxPortRange {
		return 0, 0, fmt.Errorf("%s range %q has more than %d ports", what, v, maxPortRange)
	}
	return a, b, nil
}

// exposedPorts reads an image's ExposedPorts ("80/tcp", "53/udp", "8000-8001/tcp") for -P,
// in a stable order; every one gets a free host port.
func exposedPorts(exposed map[string]struct{}) ([]PortMapping, error) {
	keys := make([]string, 0, len(exposed))
	for k := range exposed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []PortMapping
	for _, k := range keys {
		ps, err := parsePublish(k)
		if err != nil {
			return nil, fmt.Errorf("the image's exposed port: %w", err)
		}
		out = append(out, ps...)
	}
	return out, nil
}

// setupNetwork parses the network options of a run and reserves its host ports: a port that
// cannot be bound fails here, before the container exists. exposed is the image's
// ExposedPorts, published on free host ports when publishAll (-P).
func (e *Engine) setupNetwork(mode string, aliases []string, publish []string, publishAll bool, exposed map[string]struct{}) (network, error) {
	n, err := parseNetwork(e.Paths.GraphRoot, mode)
	if err != nil {
		return n, err
	}
	if len(aliases) > 0 {
		if n.Bridge == "" {
			return n, errors.New("--network-alias works only for containers on a user network (nook network create)")
		}
		for _, a := range aliases {
			if !validName.MatchString(a) {
				return n, fmt.Errorf("invalid network alias %q: use letters, digits, _ . and -", a)
			}
		}
		n.Aliases = aliases
	}
	for _, s := range publish {
		ps, err := parsePublish(s)
		if err != nil {
			return n, err
		}
		n.Ports = append(n.Ports, ps...)
	}
	if publishAll {
		ps, err := exposedPorts(exposed)
		if err != nil {
			return n, err
		}
		for _, p := range ps {
			// An explicit -p of the same container port wins, as in Docker.
			dup := false
			for _, q := range n.Ports {
				dup = dup || (q.ContainerPort == p.ContainerPort && q.Proto == p.Proto)
			}
			if !dup {
				n.Ports = append(n.Ports, p)
			}
		}
	}
	if len(n.Ports) > 0 && n.Mode != NetSlirp && n.Mode != NetPasta && n.Bridge == "" {
		if n.Mode == NetNone {
			return n, fmt.Errorf("cannot publish ports with --network none: the container has no network (use --network slirp4netns)")
		}
		return n, fmt.Errorf("cannot publish ports with --network host: the container already uses the host's ports")
	}
	for i := range n.Ports {
		if n.Ports[i].HostIP != "" && strings.Contains(n.Ports[i].HostIP, ":") && n.Mode == NetSlirp && n.PortHandler == slirp.PortHandlerSlirp4netns {
			return n, fmt.Errorf("cannot publish %s: slirp4netns' port handler has no IPv6; use the default port handler", n.Ports[i])
		}
		if err := checkHostPort(&n.Ports[i], n.Ports[:i]); err != nil {
			return n, err
		}
	}
	return n, nil
}

// checkHostPort makes sure p's host port can be bound now, and picks a free one when none was
// given (or the first free one of its host range). The forwarder binds it again when the
// container starts; a port taken in between fails then, with exit 125.
func checkHostPort(p *PortMapping, before []PortMapping) error {
	if r := p.hostRange; r[1] != 0 {
		p.hostRange = [2]int{}
		var err error
		for port := r[0]; port <= r[1]; port++ {
			p.HostPort = port
			if err = checkHostPort(p, before); err == nil {
				return nil
			}
		}
		return fmt.Errorf("cannot publish container port %d/%s: no host port of %d-%d is free: %w", p.ContainerPort, p.Proto, r[0], r[1], err)
	}
	if p.HostPort != 0 {
		if start := unprivilegedPortStart(); p.HostPort < start {
			return fmt.Errorf("cannot publish port %d: host ports below %d need privileges (sysctl net.ipv4.ip_unprivileged_port_start=%d); choose a port of %d or more, or ask an administrator to lower net.ipv4.ip_unprivileged_port_start",
				p.HostPort, start, start, start)
		}
		for _, q := range before {
			if q.HostPort == p.HostPort && q.Proto == p.Proto && (q.HostIP == p.HostIP || q.HostIP == "" || p.HostIP == "") {
				return fmt.Errorf("host port %d/%s is published twice", p.HostPort, p.Proto)
			}
		}
	}
	fp := p.forward()
	var bound net.Addr
	var err error
	if p.Proto == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket(fp.Network(), fp.ListenAddr()); err == nil {
			bound = c.LocalAddr()
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen(fp.Network(), fp.ListenAddr()); err == nil {
			bound = l.Addr()
			l.Close()
		}
	}
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("cannot publish %s: host port %d/%s is already in use", p, p.HostPort, p.Proto)
		}
		return fmt.Errorf("cannot publish %s: %w", p, err)
	}
	switch a := bound.(type) {
	case *net.TCPAddr:
		p.HostPort = a.Port
	case *net.UDPAddr:
		p.HostPort = a.Port
	}
	return nil
}

func (p PortMapping) forward() slirp.Port {
	return slirp.Port{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto}
}

// slirpConfig is what starts the container's network (slirp.Setup), nil for none and host.
func (nw network) slirpConfig() *slirp.Config {
	var c slirp.Config
	switch nw.Mode {
	case NetSlirp:
		c = slirp.Config{Backend: slirp.BackendSlirp4netns, AllowHostLoopback: nw.AllowHostLoopback, PortHandler: nw.PortHandler, Bypass: nw.Bypass}
	case NetPasta:
		c = slirp.Config{Backend: slirp.BackendPasta, AllowHostLoopback: nw.AllowHostLoopback}
	case NetNone:
		if nw.Bridge == "" {
			return nil
		}
		c = slirp.Config{Backend: slirp.BackendNone}
	default:
		return nil
	}
	c.UserNet = nw.member
	for _, p := range nw.Ports {
		c.Ports = append(c.Ports, p.forward())
	}
	return &c
}

// unprivilegedPortStart is the lowest port a user may bind (1024 unless the administrator
// changed it); the engine is in the host's network namespace, whose value this is.
func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

// startSlirp gives the init's network namespace (pid) its network and the published ports.
func startSlirp(ctx context.Context, runtimePath string, pid int, rundir string, nw network) (*slirp.Network, error) {
	c := nw.slirpConfig()
	if c == nil {
		return nil, nil
	}
	c.Runtime = runtimePath
	return slirp.Setup(ctx, *c, pid, rundir)
}

// containerDNS is the name server a container of this network mode uses: the resolver of its
// network helper, which forwards to the host's; "" for none and host.
func containerDNS(mode string) string {
	switch mode {
	case NetSlirp:
		return slirp.DNSIP
	case NetPasta:
		return slirp.PastaDNS
	}
	return ""
}

// memberOf makes the container a member of its user network, if it has one: what its starter
// (this engine or its monitor) needs to join it. The engine must run in the network's keeper's
// user namespace, which the CLI entered for it.
func (e *Engine) memberOf(nw *network, id, name, hostname, hosts, extraHosts string) error {
	if nw.Bridge == "" {
		return nil
	}
	rec, err := netuser.Load(e.Paths.GraphRoot, nw.Bridge)
	if err != nil {
		if errors.Is(err, netuser.ErrNotFound) {
			return fmt.Errorf("network %s not found: it was removed; create it again (nook network create %s) or remove the container", nw.Bridge, nw.Bridge)
		}
		return err
	}
	if userns.JoinedNetwork() != nw.Bridge {
		return fmt.Errorf("internal error: container %s of network %s started outside the network's user namespace", name, nw.Bridge)
	}
	nw.member = &netuser.Member{Network: nw.Bridge, Dir: netuser.StateDir(e.Paths.RunRoot, nw.Bridge),
		ID: id, Name: name, Hostname: hostname, Aliases: nw.Aliases, Hosts: hosts, ExtraHosts: extraHosts, Subnet: rec.Subnet}
	return nil
}

// UserNetworkFor is the user network that starting the containers refs needs this engine to run
// in (the CLI then runs the command again in that network's keeper's user namespace), or "".
func (e *Engine) UserNetworkFor(refs []string) (string, error) {
	need := ""
	for _, ref := range refs {
		c, err := e.FindContainer(ref)
		if err != nil || c.Net == nil || c.Net.Bridge == "" {
			continue // errors are the start's to report
		}
		if need != "" && need != c.Net.Bridge {
			return "", fmt.Errorf("containers of networks %s and %s cannot be started by one command: start them separately", need, c.Net.Bridge)
		}
		need = c.Net.Bridge
	}
	if need == userns.JoinedNetwork() {
		return "", nil
	}
	return need, nil
}
