package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/nook-containers/nook/netuser"
)

func TestDefaultRoute(t *testing.T) {
	// /proc/net/route as the kernel writes it on a little-endian host (as every test machine is): two default routes, the
	// second with the lower metric, and a link route.
	table := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
		"eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
	iface, gw := defaultRoute(strings.NewReader(table))
	if iface != "eth0" || gw != "10.0.0.1" {
		t.Errorf("defaultRoute = %s %s, want eth0 10.0.0.1", iface, gw)
	}
	if iface, gw := defaultRoute(strings.NewReader(table[:strings.IndexByte(table, '\n')+1])); iface != "" || gw != "" {
		t.Errorf("no default route: got %q %q", iface, gw)
	}
}

func TestMemberEndpoint(t *testing.T) {
	rec := &netuser.Network{Name: "lab", ID: "abc", Subnet: "10.89.3.0/24", Gateway: "10.89.3.1"}
	l := &netuser.Lease{ID: "c1", Name: "web", Hostname: "box", Aliases: []string{"db", "web"}, Addr: "10.89.3.2", MAC: "02:42:0a:59:03:02"}
	ep := memberEndpoint(rec, l, "c1")
	if ep.IPAddress != "10.89.3.2" || ep.IPPrefixLen != 24 || ep.Gateway != "10.89.3.1" || ep.MacAddress != l.MAC ||
		ep.NetworkID != "abc" || ep.EndpointID != EndpointID("abc", "c1") || len(ep.EndpointID) != 64 {
		t.Errorf("memberEndpoint = %+v", ep)
	}
	if !slices.Equal(ep.Aliases, []string{"db", "web"}) || !slices.Equal(ep.DNSNames, []string{"web", "box", "db"}) {
		t.Errorf("aliases %v, DNS names %v", ep.Aliases, ep.DNSNames)
	}
}
