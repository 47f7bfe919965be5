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
