package engine

import (
	"strings"
	"testing"
)

func TestParseExtraHost(t *testing.T) {
	for _, c := range []struct{ in, host, ip, err string }{
		{"db:192.0.2.1", "db", "192.0.2.1", ""},
		{"db=192.0.2.1", "db", "192.0.2.1", ""},
		{"v6:::1", "v6", "::1", ""},
		{"v6=[2001:db8::1]", "v6", "2001:db8::1", ""},
		{"gw:host-gateway", "gw", "host-gateway", ""},
		{"db", "", "", "bad format"},
		{":192.0.2.1", "", "", "bad format"},
		{"db:nope", "", "", "invalid IP address"},
	} {
		host, ip, err := parseExtraHost(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseExtraHost(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || host != c.host || ip != c.ip {
			t.Errorf("parseExtraHost(%q) = %q, %q, %v; want %q, %q", c.in, host, ip, err, c.host, c.ip)
		}
	}
}

func TestApplyDNSFlags(t *testing.T) {
	base := "# the host's\nnameserver 10.0.2.3\nsearch lan\noptions edns0\n"
	for _, c := range []struct {
		dns, search, opts []string
		want              string
	}{
		{nil, nil, nil, base},
		{[]string{"192.0.2.53"}, nil, nil, "search lan\nnameserver 192.0.2.53\noptions edns0\n"},
		{nil, []string{"a.example", "b.example"}, nil, "search a.example b.example\nnameserver 10.0.2.3\noptions edns0\n"},
		{nil, []string{"."}, []string{"ndots:2"}, "nameserver 10.0.2.3\noptions ndots:2\n"},
	} {
		if got := applyDNSFlags(base, c.dns, c.search, c.opts); got != c.want {
			t.Errorf("applyDNSFlags(%v, %v, %v) =\n%s\nwant\n%s", c.dns, c.search, c.opts, got, c.want)
		}
	}
}

func TestParseShmSize(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "1024": 1024, "64m": 64 << 20, "1g": 1 << 30, "512k": 512 << 10, "2MB": 2 << 20} {
		if got, err := parseShmSize(in); err != nil || got != want {
			t.Errorf("parseShmSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "lots", "1x"} {
		if _, err := parseShmSize(in); err == nil {
			t.Errorf("parseShmSize(%q) is accepted", in)
		}
	}
}

func TestParseSysctls(t *testing.T) {
	ok := []string{"net.ipv4.ip_forward=1", "kernel.msgmax=4096", "kernel.shm_rmid_forced=1", "fs.mqueue.msg_max=20", "net/ipv4/ping_group_range=0 0"}
	got, err := parseSysctls(ok, network{Mode: NetSlirp})
	if err != nil || len(got) != len(ok) || got["net.ipv4.ping_group_range"] != "0 0" {
		t.Errorf("parseSysctls(%q) = %v, %v", ok, got, err)
	}
	for _, c := range []struct {
		kv   string
		mode string
	}{{"vm.swappiness=1", NetSlirp}, {"kernel.hostname=x", NetSlirp}, {"kernel.msgmax", NetSlirp}, {"net.ipv4.ip_forward=1", NetHost}} {
		if _, err := parseSysctls([]string{c.kv}, network{Mode: c.mode}); err == nil {
			t.Errorf("parseSysctls(%q) with %s is accepted", c.kv, c.mode)
		}
	}
}

func TestParseExpose(t *testing.T) {
	got, err := parseExpose("8000-8002/udp")
	if err != nil || strings.Join(got, ",") != "8000/udp,8001/udp,8002/udp" {
		t.Errorf("parseExpose(8000-8002/udp) = %v, %v", got, err)
	}
	for _, in := range []string{"http", "80/icmp", "0", "90-80"} {
		if _, err := parseExpose(in); err == nil {
			t.Errorf("parseExpose(%q) is accepted", in)
		}
	}
}
