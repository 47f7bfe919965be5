package slirp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/nook-containers/nook/bypass"
	"github.com/nook-containers/nook/netuser"
	"github.com/nook-containers/nook/portfwd"
)

// Backends of Config.
const (
	BackendSlirp4netns = "slirp4netns"
	BackendPasta       = "pasta"
	// BackendNone is no outbound network: a member of an internal user network, or of any
	// user network where slirp4netns cannot run. Published ports still work (portfwd).
	BackendNone = "none"
)

// Port handlers of Config: who forwards published ports with slirp4netns.
const (
	// PortHandlerBuiltin listens on the host and splices each connection to a socket made in
	// the container's network namespace (package portfwd, rootlesskit's builtin driver's way).
	// The container sees connections come from 127.0.0.1.
	PortHandlerBuiltin = "builtin"
	// PortHandlerSlirp4netns is slirp4netns' own forwarder (add_hostfwd): slower, a copy
	// through slirp's TCP stack, but the container sees the gateway, 10.0.2.2.
	PortHandlerSlirp4netns = "slirp4netns"
)

// Port is one published port.
type Port = portfwd.Port

// Config is a container's user-mode network: written by the engine, read by whoever starts the
// container (the engine in the foreground, the monitor for a detached container).
type Config struct {
	Backend           string `json:"backend,omitempty"` // "" is slirp4netns
	AllowHostLoopback bool   `json:"allowHostLoopback,omitempty"`
	PortHandler       string `json:"portHandler,omitempty"` // "" is builtin
	Ports             []Port `json:"ports,omitempty"`
	// UserNet, when set, also makes the container a member of a user network (netuser): eth0
	// on the network's bridge, beside the helper's tap0, which keeps the default route.
	UserNet *netuser.Member `json:"userNet,omitempty"`
	// Bypass is slirp4netns:bypass4netns=true: TCP connections to the host's network are made
	// in the host's namespace by a handler (package bypass), which Runtime (nook-runtime's
	// path, set by the starter) runs.
	Bypass  bool   `json:"bypass,omitempty"`
	Runtime string `json:"-"`
}

// Network is a container's running network: its helper process and its port forwarder. It
// lives as long as the container: Close ends it, and so does the death of the process (the
// thread, in fact) that set it up.
type Network struct {
	slirp *Slirp4netns
	pasta *Pasta
	fwd   *portfwd.Forwarder
	user  *netuser.Joined
	bp    *bypass.Handler
	// reserved are the host sockets of the ports the bypass4netns handler binds, until it has
	// them.
	reserved []*os.File
}

// BypassedPorts splits c's published ports when c has bypass4netns: TCP ports published on
// every address or an IPv4 one, each container port once, are bound on the host by the
// bypass4netns handler when the container binds them (bypass.Config.Published); the others
// (UDP, an IPv6 host address, a container port published twice) go to the port forwarder.
func (c Config) BypassedPorts() (bypassed []bypass.Published, rest []Port) {
	if !c.Bypass || !(c.Backend == "" || c.Backend == BackendSlirp4netns) {
		return nil, c.Ports
	}
	count := map[int]int{}
	for _, p := range c.Ports {
		if p.Proto == "tcp" {
			count[p.ContainerPort]++
		}
	}
	for _, p := range c.Ports {
		ip, err := netip.ParseAddr(p.HostIP)
		if p.Proto == "tcp" && count[p.ContainerPort] == 1 && (p.HostIP == "" || err == nil && ip.Unmap().Is4()) {
			bypassed = append(bypassed, bypass.Published{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort})
			continue
		}
		rest = append(rest, p)
	}
	return bypassed, rest
}

// ForwardedPorts are the ports of c that nook's forwarder (package portfwd) publishes, in the
// order it listens on them: all but pasta's, slirp4netns' own forwarder's and those the
// bypass4netns handler binds.
func (c Config) ForwardedPorts() []Port {
	if c.Backend == BackendPasta || c.PortHandler == PortHandlerSlirp4netns {
		return nil
	}
	_, ports := c.BypassedPorts()
	return ports
}

// Setup gives the network namespace of pid (a container's init, not yet running its payload)
// the network c describes. dir is the container's run directory, for slirp4netns' API socket.
// The host ports are bound first, so that a taken port fails before anything starts.
func Setup(ctx context.Context, c Config, pid int, dir string) (*Network, error) {
	n := &Network{}
	fail := func(err error) (*Network, error) {
		n.Close()
		return nil, fmt.Errorf("set up the container's network: %w", err)
	}
	if c.Backend == BackendPasta {
		p, err := StartPasta(ctx, pid, c.Ports, c.AllowHostLoopback, 0)
		if err != nil {
			return fail(err)
		}
		n.pasta = p
		return n.join(c, pid)
	}
	bypassed, ports := c.BypassedPorts()
	if len(bypassed) > 0 {
		r, err := bypass.Reserve(bypassed)
		if err != nil {
			return fail(err)
		}
		n.reserved = r
	}
	if fwd := c.ForwardedPorts(); len(fwd) > 0 {
		f, err := portfwd.Listen(fwd)
		if err != nil {
			return fail(err)
		}
		n.fwd = f
	}
	if c.Backend != BackendNone {
		s, err := StartSlirp4netns(ctx, Options{PID: pid, Dir: dir, AllowHostLoopback: c.AllowHostLoopback})
		if err != nil {
			return fail(err)
		}
		n.slirp = s
	}
	if n.fwd != nil {
		if err := n.fwd.Serve(pid); err != nil {
			return fail(err)
		}
		return n.join(c, pid)
	}
	for _, p := range ports {
		if err := n.slirp.AddPort(p.Proto, p.HostIP, p.HostPort, p.ContainerPort); err != nil {
			return fail(err)
		}
	}
	return n.join(c, pid)
}

// join makes the container a member of its user network, if it has one, and starts the
// bypass4netns handler, if asked for.
func (n *Network) join(c Config, pid int) (*Network, error) {
	fail := func(err error) (*Network, error) {
		n.Close()
		return nil, fmt.Errorf("set up the container's network: %w", err)
	}
	if c.UserNet != nil {
		j, err := netuser.Join(*c.UserNet, pid)
		if err != nil {
			return fail(err)
		}
		n.user = j
	}
	if c.Bypass && (c.Backend == "" || c.Backend == BackendSlirp4netns) {
		bc := bypass.Config{Inside: []string{CIDR}, Gateway: GatewayIP, AllowHostLoopback: c.AllowHostLoopback, Own: []string{GuestIP}}
		if c.UserNet != nil && c.UserNet.Subnet != "" {
			bc.Inside = append(bc.Inside, c.UserNet.Subnet)
		}
		if n.user != nil && n.user.Addr != "" {
			bc.Own = append(bc.Own, n.user.Addr)
		}
		bc.Published, _ = c.BypassedPorts()
		h, err := bypass.Start(c.Runtime, bc, n.reserved)
		if err != nil {
			return fail(err)
		}
		n.bp = h
		n.closeReserved()
	}
	return n, nil
}

// Listener hands the container's seccomp listener (runtime.BypassAnnotation) to the network's
// bypass4netns handler.
func (n *Network) Listener(f *os.File) error {
	if n == nil || n.bp == nil {
		return errors.New("the container asked for bypass4netns, but its network has no handler")
	}
	return n.bp.Serve(f)
}

// Handoff returns what a process that execs itself keeps of n (see monitor's nook-idle): ok
// is false when n is more than a slirp4netns and a port forwarder (pasta's output copier or a
// user network's member live in the process's threads; the bypass4netns handler's socket is
// not handed over either). A network without a helper (BackendNone, no ports) is Handoff{}
// and ok. The forwarder is handed over separately, when it is quiet: PauseForwarder.
func (n *Network) Handoff() (h Handoff, ok bool) {
	if n.pasta != nil || n.user != nil || n.bp != nil {
		return h, false
	}
	if n.slirp != nil {
		h = n.slirp.Handoff()
	}
	return h, true
}

// ForwarderHandoff is what a process that execs itself keeps of a paused port forwarder.
type ForwarderHandoff = portfwd.Handoff

// PauseForwarder pauses n's port forwarder if it has been quiet for quiet and returns its
// fds (portfwd.Forwarder.Pause); without a forwarder it returns no fds and true. A paused
// forwarder takes nothing from its host sockets until UnpauseForwarder (an exec that failed)
// or the exec.
func (n *Network) PauseForwarder(quiet time.Duration) (ForwarderHandoff, bool) {
	if n.fwd == nil {
		return ForwarderHandoff{Netns: -1}, true
	}
	return n.fwd.Pause(quiet)
}

// UnpauseForwarder undoes PauseForwarder.
func (n *Network) UnpauseForwarder() {
	if n.fwd != nil {
		n.fwd.Unpause()
	}
}

// ResumeNetwork takes over the network of a Handoff after an exec, and the port forwarder of
// fh (its host sockets, for c.ForwardedPorts) when it has one; dir is the container's run
// directory.
func ResumeNetwork(h Handoff, fh ForwarderHandoff, c Config, dir string) (*Network, error) {
	n := &Network{}
	if h.Pid > 0 {
		s, err := ResumeSlirp4netns(h, dir)
		if err != nil {
			return nil, err
		}
		n.slirp = s
	}
	if len(fh.Socks) > 0 {
		f, err := portfwd.Resume(fh, c.ForwardedPorts())
		if err != nil {
			return n, err
		}
		n.fwd = f
	}
	return n, nil
}

func (n *Network) closeReserved() {
	for _, f := range n.reserved {
		f.Close()
	}
	n.reserved = nil
}

// Close ends the network: the forwarder first (its host ports are free when Close returns),
// then the helper.
func (n *Network) Close() error {
	n.closeReserved()
	if n.bp != nil {
		n.bp.Close()
		n.bp = nil
	}
	if n.user != nil {
		n.user.Leave()
		n.user = nil
	}
	if n.fwd != nil {
		n.fwd.Close()
	}
	if n.slirp != nil {
		n.slirp.Close()
	}
	if n.pasta != nil {
		n.pasta.Close()
	}
	return nil
}
