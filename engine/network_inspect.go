package engine

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/nook-containers/nook/netuser"
	"github.com/nook-containers/nook/slirp"
)

// EndpointSettings is one entry of a container's NetworkSettings.Networks, in Docker's names.
// The addresses are filled while the container runs, as Docker does.
type EndpointSettings struct {
	Aliases             []string `json:"Aliases"`
	NetworkID           string   `json:"NetworkID"`
	EndpointID          string   `json:"EndpointID"`
	Gateway             string   `json:"Gateway"`
	IPAddress           string   `json:"IPAddress"`
	IPPrefixLen         int      `json:"IPPrefixLen"`
	IPv6Gateway         string   `json:"IPv6Gateway"`
	GlobalIPv6Address   string   `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int      `json:"GlobalIPv6PrefixLen"`
	MacAddress          string   `json:"MacAddress"`
	DNSNames            []string `json:"DNSNames"`
}

// EndpointID is the ID of container ctrID's endpoint on the network networkID: derived from
// both, so `inspect` and `network inspect` agree without recording it.
func EndpointID(networkID, ctrID string) string {
	h := sha256.Sum256([]byte(networkID + "/" + ctrID))
	return hex.EncodeToString(h[:])
}

// containerNetworks fills NetworkSettings.Networks (and, for slirp4netns and pasta, which play
// Docker's default bridge's part, the top-level address fields as Docker fills them for that
// network) from the container's record and, while it runs, from where its network lives: the
// user network's leases, or slirp4netns' fixed addresses, or the host's for pasta.
func (e *Engine) containerNetworks(c *Container, ns *ContainerNetSettings) {
	ns.Networks = map[string]EndpointSettings{}
	if c.Net == nil {
		return
	}
	running := c.State == StateRunning
	nw := c.Net
	if nw.Bridge != "" {
		ep := EndpointSettings{Aliases: nonNil(nw.Aliases), DNSNames: []string{}}
		rec, err := netuser.Load(e.Paths.GraphRoot, nw.Bridge)
		if err == nil {
			ep.NetworkID = rec.ID
			if running {
				if members, err := netuser.Members(e.Paths.RunRoot, nw.Bridge); err == nil {
					for i := range members {
						if members[i].ID == c.ID {
							ep = memberEndpoint(rec, &members[i], c.ID)
						}
					}
				}
			}
		}
		ns.Networks[nw.Bridge] = ep
		return
	}
	ep := EndpointSettings{Aliases: []string{}, DNSNames: []string{}}
	if running {
		switch nw.Mode {
		case NetSlirp:
			ep.IPAddress, ep.IPPrefixLen, ep.Gateway = slirp.GuestIP, 24, slirp.GatewayIP
		case NetPasta:
			// pasta copies the address and default gateway of the host's interface that has the
			// default route (its template interface) into the container.
			if r, err := os.Open("/proc/net/route"); err == nil {
				iface, gw := defaultRoute(r)
				r.Close()
				ep.Gateway = gw
				if ifc, err := net.InterfaceByName(iface); err == nil {
					ep.IPAddress, ep.IPPrefixLen = firstIPv4(ifc)
				}
			}
		}
	}
	ns.Networks[nw.Mode] = ep
	if nw.Mode == NetSlirp || nw.Mode == NetPasta {
		ns.IPAddress, ns.IPPrefixLen, ns.Gateway, ns.MacAddress = ep.IPAddress, ep.IPPrefixLen, ep.Gateway, ep.MacAddress
	}
}

// memberEndpoint is a running member's endpoint on network rec, from its lease.
func memberEndpoint(rec *netuser.Network, l *netuser.Lease, ctrID string) EndpointSettings {
	ep := EndpointSettings{Aliases: nonNil(l.Aliases), NetworkID: rec.ID, EndpointID: EndpointID(rec.ID, ctrID),
		Gateway: rec.Gateway, IPAddress: l.Addr, MacAddress: l.MAC, DNSNames: []string{l.Name}}
	if _, s, err := net.ParseCIDR(rec.Subnet); err == nil {
		ep.IPPrefixLen, _ = s.Mask.Size()
	}
	if l.Hostname != "" && l.Hostname != l.Name {
		ep.DNSNames = append(ep.DNSNames, l.Hostname)
	}
	for _, a := range l.Aliases {
		dup := false
		for _, n := range ep.DNSNames {
			dup = dup || n == a
		}
		if !dup {
			ep.DNSNames = append(ep.DNSNames, a)
		}
	}
	return ep
}

// defaultRoute reads /proc/net/route and returns the interface and gateway of the IPv4 default
// route with the lowest metric ("" when there is none).
func defaultRoute(r interface{ Read([]byte) (int, error) }) (iface, gateway string) {
	best := -1
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		metric, err := strconv.Atoi(f[6])
		if err != nil || (best >= 0 && metric >= best) {
			continue
		}
		g, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			continue
		}
		// The kernel prints the address as a native-endian 32-bit number.
		ip := make(net.IP, 4)
		binary.NativeEndian.PutUint32(ip, uint32(g))
		best, iface, gateway = metric, f[0], ip.String()
	}
	return iface, gateway
}

func firstIPv4(ifc *net.Interface) (string, int) {
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", 0
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ones, _ := n.Mask.Size()
			return n.IP.String(), ones
		}
	}
	return "", 0
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
