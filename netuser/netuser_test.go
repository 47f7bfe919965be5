package netuser

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nook-containers/nook/internal/proc"
)

func TestCreateChoosesSubnets(t *testing.T) {
	root := t.TempDir()
	a, err := Create(root, CreateOptions{Name: "a"})
	if err != nil || a.Subnet != "10.89.0.0/24" || a.Gateway != "10.89.0.1" || len(a.ID) != 64 {
		t.Fatalf("first network: %+v, %v", a, err)
	}
	if _, err := Create(root, CreateOptions{Name: "b", Subnet: "10.89.1.0/24", Gateway: "10.89.1.254"}); err != nil {
		t.Fatal(err)
	}
	c, err := Create(root, CreateOptions{Name: "c"})
	if err != nil || c.Subnet != "10.89.2.0/24" {
		t.Errorf("third network skips the taken subnets: %+v, %v", c, err)
	}
	for _, bad := range []CreateOptions{
		{Name: "a"},                           // exists
		{Name: "host"},                        // reserved
		{Name: "-x"},                          // invalid
		{Name: "d", Subnet: "10.89.0.128/25"}, // overlaps a
		{Name: "d", Subnet: "10.0.0.0/16"},    // overlaps slirp4netns' 10.0.2.0/24
		{Name: "d", Subnet: "fd00::/64"},      // IPv6
		{Name: "d", Subnet: "10.99.0.0/24", Gateway: "10.98.0.1"}, // gateway outside
		{Name: "d", Driver: "macvlan"},
	} {
		if n, err := Create(root, bad); err == nil {
			t.Errorf("Create(%+v) = %+v, want an error", bad, n)
		}
	}
	ns, err := List(root)
	if err != nil || len(ns) != 3 || ns[0].Name != "a" || ns[2].Name != "c" {
		t.Errorf("List = %+v, %v", ns, err)
	}
	if n, err := Find(root, a.ID[:10]); err != nil || n.Name != "a" {
		t.Errorf("Find by ID prefix: %+v, %v", n, err)
	}
	if _, err := Find(root, "nosuch"); err == nil || err.Error() != "network nosuch not found" {
		t.Errorf("Find(nosuch) = %v", err)
	}
}

func TestRemoveRefusesMembers(t *testing.T) {
	root, run := t.TempDir(), t.TempDir()
	n, err := Create(root, CreateOptions{Name: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	dir := StateDir(run, "lab")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeLeases(dir, []Lease{{ID: "c1", Name: "one", Addr: "10.89.0.2"}}); err != nil {
		t.Fatal(err)
	}
	// The leases count while their keeper runs (this test process stands in for it).
	start := proc.Self()
	if err := os.WriteFile(filepath.Join(dir, "keeper.json"), []byte(`{"pid":`+strconv.Itoa(os.Getpid())+`,"start":"`+start+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err = Remove(root, run, n)
	if err == nil || !strings.Contains(err.Error(), "network lab id "+n.ID+" has active endpoints") {
		t.Errorf("Remove with a member: %v", err)
	}
	_ = writeLeases(dir, nil)
	if _, err := os.Stat(filepath.Join(dir, "leases.json")); !os.IsNotExist(err) {
		t.Errorf("no members leaves no leases file: %v", err)
	}
	if err := Remove(root, run, n); err != nil {
		t.Errorf("Remove without members: %v", err)
	}
}

func TestRenderHosts(t *testing.T) {
	got := string(renderHosts([]Lease{
		{Name: "db", Hostname: "0123456789ab", Aliases: []string{"postgres", "db"}, Addr: "10.89.0.2"},
		{Name: "web", Hostname: "web", Addr: "10.89.0.3"},
	}, ""))
	want := hostsHeader + "10.89.0.2\tdb 0123456789ab postgres\n10.89.0.3\tweb\n"
	if got != want {
		t.Errorf("renderHosts =\n%s\nwant\n%s", got, want)
	}
	// A member's --add-host lines follow the localhost lines in its own file only.
	got = string(renderHosts([]Lease{{Name: "web", Addr: "10.89.0.3"}}, "192.0.2.7\tapi\n"))
	want = hostsHeader + "192.0.2.7\tapi\n10.89.0.3\tweb\n"
	if got != want {
		t.Errorf("renderHosts with extra hosts =\n%s\nwant\n%s", got, want)
	}
}

func TestRewriteHostsInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte("old content that is longer than the new one\n"+strings.Repeat("x", 500)), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	rewriteHosts([]Lease{{Name: "a", Addr: "10.89.0.2", Hosts: path}, {Name: "gone", Addr: "10.89.0.3", Hosts: "/nonexistent/hosts"}})
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Errorf("the hosts file was replaced, not rewritten in place (a bind mount would keep the old one)")
	}
	b, _ := os.ReadFile(path)
	if string(b) != hostsHeader+"10.89.0.2\ta\n10.89.0.3\tgone\n" {
		t.Errorf("rewritten hosts:\n%s", b)
	}
}

func TestFreeAddr(t *testing.T) {
	_, subnet, _ := net.ParseCIDR("10.90.0.0/30") // .1 and .2 usable
	k := &keeper{subnet: subnet, gw: net.ParseIP("10.90.0.1").To4()}
	ip, err := k.freeAddr(nil)
	if err != nil || ip.String() != "10.90.0.2" {
		t.Errorf("first free address: %v, %v", ip, err)
	}
	if ip, err := k.freeAddr([]Lease{{Addr: "10.90.0.2"}}); err == nil {
		t.Errorf("a full /30 gave %v", ip)
	}
}

func TestMACFor(t *testing.T) {
	if got := MACFor(net.ParseIP("10.89.0.2")).String(); got != "02:42:0a:59:00:02" {
		t.Errorf("MACFor(10.89.0.2) = %s, want 02:42:0a:59:00:02", got)
	}
	if got := MACFor(net.ParseIP("fd00::1")); got != nil {
		t.Errorf("MACFor of an IPv6 address = %s, want none", got)
	}
}
