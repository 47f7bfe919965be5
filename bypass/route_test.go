package bypass

import (
	"net/netip"
	"testing"
)

func TestRoute(t *testing.T) {
	c := Config{Inside: []string{"10.0.2.0/24", "10.89.0.0/24"}, Gateway: "10.0.2.2"}
	open := c
	open.AllowHostLoopback = true
	for _, tc := range []struct {
		cfg  Config
		dst  string
		want string // "" stays in the container
	}{
		{c, "192.0.2.2", "192.0.2.2"},
		{c, "::ffff:192.0.2.2", "192.0.2.2"},
		{c, "2001:db8::1", "2001:db8::1"},
		{c, "127.0.0.1", ""},
		{c, "127.1.2.3", ""},
		{c, "::1", ""},
		{c, "::ffff:127.0.0.1", ""},
		{c, "0.0.0.0", ""},
		{c, "::", ""},
		{c, "10.0.2.3", ""},   // slirp4netns' resolver
		{c, "10.0.2.100", ""}, // the container itself
		{c, "10.89.0.7", ""},  // a member of its user network
		{c, "10.0.3.1", "10.0.3.1"},
		{c, "169.254.1.1", ""},
		{c, "fe80::1", ""},
		{c, "224.0.0.1", ""},
		{c, "255.255.255.255", ""},
		{c, "10.0.2.2", ""},
		{open, "10.0.2.2", "127.0.0.1"},
		{open, "::ffff:10.0.2.2", "127.0.0.1"},
	} {
		to, ok := tc.cfg.Route(netip.MustParseAddr(tc.dst))
		got := ""
		if ok {
			got = to.String()
		}
		if got != tc.want {
			t.Errorf("Route(%s) with allow_host_loopback=%v = %q, want %q", tc.dst, tc.cfg.AllowHostLoopback, got, tc.want)
		}
	}
}

func TestAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"6.1.0-18-amd64", true}, {"5.9.0", true}, {"5.10.0-28-cloud-amd64", true}, {"5.8.18", false},
		{"4.19.0", false}, {"6.18.44-fc-v782", true}, {"", false},
	} {
		if got := atLeast(tc.release, 5, 9); got != tc.want {
			t.Errorf("atLeast(%q, 5, 9) = %v, want %v", tc.release, got, tc.want)
		}
	}
}

func TestBindTo(t *testing.T) {
	c := Config{Own: []string{"10.0.2.100"}, Published: []Published{
		{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80},
		{HostPort: 8443, ContainerPort: 443},
	}}
	for _, tc := range []struct {
		inet6, v6only bool
		addr          string
		port          uint16
		want          string // "" stays in the container
	}{
		{false, false, "0.0.0.0", 80, "127.0.0.1:8080"},
		{false, false, "10.0.2.100", 80, "127.0.0.1:8080"},
		{false, false, "127.0.0.1", 80, ""}, // the container's loopback
		{false, false, "0.0.0.0", 81, ""},   // not published
		{true, false, "::", 80, "[::ffff:127.0.0.1]:8080"},
		{true, true, "::", 80, ""}, // IPv6 only: an IPv4 host address cannot be its
		{false, false, "0.0.0.0", 443, "0.0.0.0:8443"},
		{true, true, "::", 443, "[::]:8443"},
		{true, false, "::ffff:10.0.2.100", 443, "[::]:8443"},
	} {
		got, ok := c.BindTo(tc.inet6, tc.v6only, netip.MustParseAddr(tc.addr), tc.port)
		s := ""
		if ok {
			s = got.String()
		}
		if s != tc.want {
			t.Errorf("BindTo(inet6 %v, v6only %v, %s:%d) = %q, want %q", tc.inet6, tc.v6only, tc.addr, tc.port, s, tc.want)
		}
	}
}
