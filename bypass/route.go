// Package bypass is `--network slirp4netns:bypass4netns=true`: TCP connections from the
// container to the host's network are made in the host's network namespace instead of through
// slirp4netns, the way rootless-containers' bypass4netns does it. The container's init loads a
// seccomp filter that turns connect(2) into a user notification (runtime.BypassAnnotation);
// this package's handler, `nook-runtime bypass4netns`, a process beside slirp4netns that lives
// as long as the container, answers each one: for a TCP socket bound for an address outside
// the container it makes a socket of its own (in the host's namespace), connects it, and puts it
// in place of the container's with SECCOMP_IOCTL_NOTIF_ADDFD; every other connect goes on in
// the container as before (SECCOMP_USER_NOTIF_FLAG_CONTINUE). The payload then writes straight
// into a host socket: no tap device, no slirp TCP stack, no copy.
package bypass

import (
	"net/netip"
)

// Config says which destinations stay in the container's network namespace. It is passed to
// the handler as JSON.
type Config struct {
	// Inside are the container's own networks (CIDR): slirp4netns' (10.0.2.0/24), a user
	// network's subnet. Connections to them stay in the container's namespace.
	Inside []string `json:"inside,omitempty"`
	// Gateway is slirp4netns' address for the host (10.0.2.2): with AllowHostLoopback it
	// stands for the host's loopback, as slirp4netns maps it; without, it stays in the
	// container's namespace, where slirp4netns refuses it.
	Gateway           string `json:"gateway,omitempty"`
	AllowHostLoopback bool   `json:"allowHostLoopback,omitempty"`
	// Published are the container's published TCP ports the handler binds on the host when
	// the container binds their container port (bind_linux.go); the starter reserved each
	// one's host socket and passes them, in this order, as fds 4, 5, ...
	Published []Published `json:"published,omitempty"`
	// Own are the container's own addresses (slirp4netns' 10.0.2.100): a bind to one of
	// them, or to 0.0.0.0 or ::, of a published container port is made on the host.
	Own []string `json:"own,omitempty"`
}

// Published is one published TCP port of Config.
type Published struct {
	HostIP        string `json:"hostIP,omitempty"` // "" is every address
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
}

// BindTo says where the handler binds a container's socket of the given family (true for
// AF_INET6, with v6only its IPV6_V6ONLY) that binds addr:port: the host address and port, when
// ok; in the container's namespace otherwise (the port is not published, the address is not
// the container's, or the socket could not take the published host address: an IPv4 socket
// and an IPv6 host address, or an IPv6-only socket and an IPv4 one).
func (c Config) BindTo(inet6, v6only bool, addr netip.Addr, port uint16) (host netip.AddrPort, ok bool) {
	var pub *Published
	for i := range c.Published {
		if c.Published[i].ContainerPort == int(port) {
			pub = &c.Published[i]
			break
		}
	}
	if pub == nil {
		return host, false
	}
	own := addr.IsUnspecified() || addr.Unmap() == netip.AddrFrom4([4]byte{})
	for _, o := range c.Own {
		if a, err := netip.ParseAddr(o); err == nil && a == addr.Unmap() {
			own = true
		}
	}
	if !own {
		return host, false
	}
	hp := uint16(pub.HostPort)
	if pub.HostIP == "" {
		if inet6 {
			return netip.AddrPortFrom(netip.IPv6Unspecified(), hp), true
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{}), hp), true
	}
	h, err := netip.ParseAddr(pub.HostIP)
	if err != nil {
		return host, false
	}
	h = h.Unmap()
	switch {
	case !inet6 && h.Is4():
		return netip.AddrPortFrom(h, hp), true
	case inet6 && h.Is4() && !v6only:
		return netip.AddrPortFrom(netip.AddrFrom16(h.As16()), hp), true
	case inet6 && h.Is6():
		return netip.AddrPortFrom(h, hp), true
	}
	return host, false
}

// Route says where a TCP connection from the container to dst is made: in the host's network
// namespace to the address returned, when ok; in the container's own otherwise (its loopback,
// its own networks, addresses that mean "this host" or no host at all).
func (c Config) Route(dst netip.Addr) (to netip.Addr, ok bool) {
	dst = dst.Unmap()
	if !dst.IsValid() || dst.IsLoopback() || dst.IsUnspecified() || dst.IsMulticast() ||
		dst.IsLinkLocalUnicast() || dst.IsInterfaceLocalMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}, false
	}
	if gw, err := netip.ParseAddr(c.Gateway); err == nil && dst == gw {
		if c.AllowHostLoopback {
			return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
		}
		return netip.Addr{}, false
	}
	for _, s := range c.Inside {
		if p, err := netip.ParsePrefix(s); err == nil && p.Contains(dst) {
			return netip.Addr{}, false
		}
	}
	return dst, true
}
