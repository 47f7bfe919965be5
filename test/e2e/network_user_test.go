package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// User-defined networks: `nook network create`, `--network NAME`. Every address the tests use
// is a container's on a network's bridge (which exists only inside that network's namespaces)
// or the host's loopback; the isolated container is on an --internal network, which has no
// route out, so nothing it tries leaves this machine.

// inspectedNetwork is the part of `nook network inspect` the tests read.
type inspectedNetwork struct {
	Name     string
	Id       string
	Driver   string
	Internal bool
	IPAM     struct {
		Config []struct{ Subnet, Gateway string }
	}
	Containers map[string]struct {
		Name        string
		IPv4Address string
	}
}

func inspectNetwork(t *testing.T, s *store, name string) inspectedNetwork {
	t.Helper()
	r := s.mustNook(t, "network", "inspect", name)
	var ns []inspectedNetwork
	if err := json.Unmarshal([]byte(r.Stdout), &ns); err != nil || len(ns) != 1 {
		t.Fatalf("network inspect %s: %v\n%s", name, err, r)
	}
	return ns[0]
}

// memberAddr is the address of member ctr of network name, without the prefix length.
func memberAddr(t *testing.T, s *store, name, ctr string) string {
	t.Helper()
	for _, c := range inspectNetwork(t, s, name).Containers {
		if c.Name == ctr {
			addr, _, _ := strings.Cut(c.IPv4Address, "/")
			return addr
		}
	}
	t.Fatalf("container %s is not a member of network %s", ctr, name)
	return ""
}

// keeperProcs are this user's network keepers.
func keeperProcs() map[int]bool {
	out := map[int]bool{}
	for pid, cmd := range userProcs() {
		if strings.HasPrefix(cmd, "nook-keeper ") {
			out[pid] = true
		}
	}
	return out
}

// assertNetworkIdle checks, for up to 5 s, that network name has no keeper left and that its
// run-root state holds nothing but its lock file.
func assertNetworkIdle(t *testing.T, s *store, name, after string) {
	t.Helper()
	dir := filepath.Join(s.runRoot(), "networks", name)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		keepers := keeperProcs()
		var files []string
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.Name() != "lock" {
				files = append(files, e.Name())
			}
		}
		if len(keepers) == 0 && len(files) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("after %s: keepers %v and network state %v still there 5 s later", after, keepers, files)
			return
		}
	}
}

// ncRetry is a shell loop that connects to HOST PORT with busybox nc until it gets a reply.
func ncRetry(host, port string) string {
	return "for i in $(seq 100); do nc -w 2 " + host + " " + port + " </dev/null && break; sleep 0.1; done"
}

func TestNetworkUserNamesAndIsolation(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "unet", storeOptions{}, false)
	nh := netHelper(t)
	s.mustNook(t, "network", "create", "lab")
	s.mustNook(t, "network", "create", "--internal", "other")
	lab, other := inspectNetwork(t, s, "lab"), inspectNetwork(t, s, "other")
	labNet, otherNet := lab.IPAM.Config[0].Subnet, other.IPAM.Config[0].Subnet
	if labNet == otherNet {
		t.Fatalf("two networks got the same subnet %s", labNet)
	}
	labPrefix := labNet[:strings.LastIndexByte(labNet, '.')+1] // "10.89.0." for a /24

	s.runDetached(t, "srv", "--network", "lab", "--network-alias", "db", "-v", nh+":/nh:ro", "demo", "/nh/nh", "tcppeer", "8080")
	s.runDetached(t, "srv2", "--network", "other", "-v", nh+":/nh:ro", "demo", "/nh/nh", "tcppeer", "8080")
	srvAddr := memberAddr(t, s, "lab", "srv")
	if !strings.HasPrefix(srvAddr, labPrefix) {
		t.Errorf("srv's address %s is not in lab's subnet %s", srvAddr, labNet)
	}

	// By name, by alias and by address, over the bridge: the server sees the client's address
	// on the network, not slirp4netns' 10.0.2.100.
	r := s.mustNook(t, "run", "--rm", "--network", "lab", "--name", "cli", "demo", "sh", "-c",
		ncRetry("srv", "8080")+"; nc -w 2 db 8080 </dev/null; nc -w 2 "+srvAddr+" 8080 </dev/null; ip -4 -o addr show eth0")
	lines := r.Lines()
	if len(lines) != 4 {
		t.Fatalf("want three replies and eth0's address from a member of lab, got:\n%s", r)
	}
	for i, what := range []string{"name srv", "alias db", "address " + srvAddr} {
		if !strings.HasPrefix(lines[i], "peer "+labPrefix) {
			t.Errorf("by %s: reply %q, want the server to see a peer on lab's subnet %s", what, lines[i], labNet)
		}
	}
	if !strings.Contains(lines[3], labPrefix) {
		t.Errorf("the member's eth0 is %q, want an address of %s", lines[3], labNet)
	}

	// Names follow members in and out: srv's /etc/hosts (bind-mounted) is rewritten in place
	// when another member joins and when it leaves.
	s.runDetached(t, "late", "--network", "lab", "demo", "sleep", "600")
	lateAddr := memberAddr(t, s, "lab", "late")
	if h := s.mustNook(t, "exec", "srv", "cat", "/etc/hosts").Stdout; !strings.Contains(h, lateAddr+"\tlate ") || !strings.Contains(h, srvAddr+"\tsrv ") {
		t.Errorf("srv's /etc/hosts after late joined lacks late (%s) or srv (%s):\n%s", lateAddr, srvAddr, h)
	}
	s.mustNook(t, "rm", "-f", "late")
	if h := s.mustNook(t, "exec", "srv", "cat", "/etc/hosts").Stdout; strings.Contains(h, "late") {
		t.Errorf("srv's /etc/hosts still names late after it was removed:\n%s", h)
	}

	// A container of another network reaches its own network's members, and neither the name
	// nor the address of lab's.
	r = s.nook(t, "run", "--rm", "--network", "other", "demo", "sh", "-c",
		ncRetry("srv2", "8080")+"; nc -w 2 srv 8080 </dev/null && echo REACHED-BY-NAME; nc -w 2 "+srvAddr+" 8080 </dev/null && echo REACHED-BY-ADDRESS; cat /etc/hosts")
	if r.Code != 0 {
		t.Fatalf("container on network other: exit %d\n%s", r.Code, r)
	}
	if !strings.HasPrefix(r.Stdout, "peer ") {
		t.Errorf("a member of other did not reach srv2 of its own network:\n%s", r)
	}
	if strings.Contains(r.Stdout, "REACHED") || strings.Contains(r.Stdout, srvAddr) {
		t.Errorf("a member of other reached lab's srv, or knows its name:\n%s", r)
	}
	// The internal network has no outbound route: only its own subnet.
	if r := s.mustNook(t, "run", "--rm", "--network", "other", "demo", "ip", "route"); strings.Contains(r.Stdout, "default") {
		t.Errorf("a member of an --internal network has a default route:\n%s", r)
	}
}

func TestNetworkUserCommands(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "unetcmd", storeOptions{}, false)
	nh := netHelper(t)
	id := strings.TrimSpace(s.mustNook(t, "network", "create", "--subnet", "10.91.7.0/24", "lab").Stdout)
	if len(id) != 64 {
		t.Errorf("network create printed %q, want the 64-digit ID", id)
	}
	if r := s.nook(t, "network", "create", "lab"); r.Code != 1 || !strings.Contains(r.Stderr, "already exists") {
		t.Errorf("second network create lab: want exit 1 naming the existing network\n%s", r)
	}
	if r := s.nook(t, "network", "create", "--subnet", "10.91.7.128/25", "lab2"); r.Code != 1 || !strings.Contains(r.Stderr, "overlaps") {
		t.Errorf("an overlapping subnet: want exit 1\n%s", r)
	}
	if r := s.nook(t, "network", "create", "host"); r.Code != 1 || !strings.Contains(r.Stderr, "reserved") {
		t.Errorf("network create host: want exit 1\n%s", r)
	}
	ls := s.mustNook(t, "network", "ls").Lines()
	if len(ls) != 2 || strings.Join(strings.Fields(ls[0]), " ") != "NETWORK ID NAME DRIVER SCOPE" ||
		strings.Join(strings.Fields(ls[1]), " ") != id[:12]+" lab bridge local" {
		t.Errorf("network ls:\n%s", strings.Join(ls, "\n"))
	}
	n := inspectNetwork(t, s, id[:12])
	if n.Name != "lab" || n.Id != id || n.Driver != "bridge" || n.IPAM.Config[0].Subnet != "10.91.7.0/24" || n.IPAM.Config[0].Gateway != "10.91.7.1" || len(n.Containers) != 0 {
		t.Errorf("network inspect: %+v", n)
	}
	if r := s.nook(t, "run", "--rm", "--network", "nosuch", "demo", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "network nosuch not found") {
		t.Errorf("run --network nosuch: want exit 125 and not found\n%s", r)
	}

	// A created container joins when started (its engine asks for the network's namespace),
	// and again after a stop.
	s.mustNook(t, "create", "--name", "c1", "--network", "lab", "-v", nh+":/nh:ro", "demo", "/nh/nh", "tcppeer", "8080")
	t.Cleanup(func() { s.nook(t, "rm", "-f", "c1") })
	for _, step := range [][]string{{"start", "c1"}, {"restart", "-t", "1", "c1"}} {
		s.mustNook(t, step...)
		r := s.mustNook(t, "run", "--rm", "--network", "lab", "demo", "sh", "-c", ncRetry("c1", "8080"))
		if !strings.HasPrefix(r.Stdout, "peer 10.91.7.") {
			t.Errorf("after nook %s, c1 is not reachable by name on lab:\n%s", strings.Join(step, " "), r)
		}
	}
	if got := memberAddr(t, s, "lab", "c1"); !strings.HasPrefix(got, "10.91.7.") {
		t.Errorf("c1's address %s is not on 10.91.7.0/24", got)
	}

	// A network with a running member is not removed (Docker's message and status).
	r := s.nook(t, "network", "rm", "lab")
	if r.Code != 1 || !strings.Contains(r.Stderr, "error while removing network: network lab id "+id+" has active endpoints") {
		t.Errorf("network rm of a network with a running member: want exit 1 and Docker's message\n%s", r)
	}
	if r := s.mustNook(t, "network", "prune", "-f"); strings.Contains(r.Stdout, "lab") {
		t.Errorf("network prune removed a network with a running member:\n%s", r)
	}
	s.mustNook(t, "stop", "-t", "1", "c1")
	assertNetworkIdle(t, s, "lab", "the last member stopped")
	s.mustNook(t, "network", "rm", "lab")
	if r := s.nook(t, "network", "inspect", "lab"); r.Code != 1 || !strings.Contains(r.Stderr, "not found") {
		t.Errorf("network inspect of a removed network: want exit 1\n%s", r)
	}
	if r := s.nook(t, "start", "c1"); r.Code == 0 || !strings.Contains(r.Stderr, "network lab not found") {
		t.Errorf("start of a container whose network was removed: want an error naming the network\n%s", r)
	}
	s.mustNook(t, "network", "create", "spare")
	if r := s.mustNook(t, "network", "prune", "-f"); !strings.Contains(r.Stdout, "spare") {
		t.Errorf("network prune did not remove an unused network:\n%s", r)
	}
	if ls := s.mustNook(t, "network", "ls", "-q").Lines(); len(ls) != 0 {
		t.Errorf("networks left after prune: %v", ls)
	}
}

func TestNetworkUserPublish(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "unetpub", storeOptions{}, false)
	nh := netHelper(t)
	s.mustNook(t, "network", "create", "lab")
	port := freePort(t)
	s.runDetached(t, "web", "--network", "lab", "-p", "127.0.0.1:"+strconv.Itoa(port)+":80", "-v", nh+":/nh:ro", "demo", "/nh/nh", "tcppeer", "80")
	if got := dialUntil(t, "tcp4", "127.0.0.1:"+strconv.Itoa(port)); !strings.HasPrefix(got, "peer 127.0.0.1:") {
		t.Errorf("published port of a user-network container: reply %q, want the forwarder's peer 127.0.0.1", got)
	}
	// The same server is a member of lab for the others.
	r := s.mustNook(t, "run", "--rm", "--network", "lab", "demo", "sh", "-c", ncRetry("web", "80"))
	if !strings.HasPrefix(r.Stdout, "peer 10.89.") {
		t.Errorf("web by name on lab: %q", r.Stdout)
	}
}

// TestNetworkUserNoLeftovers: the keeper, the veth pairs and slirp4netns end with the last
// member, whatever ended it.
func TestNetworkUserNoLeftovers(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "unetkill", storeOptions{}, false)
	s.mustNook(t, "network", "create", "lab")
	if why := slirpUnusable(); why != "" {
		t.Logf("members have no slirp4netns here: %s", why)
	}

	t.Run("exit", func(t *testing.T) {
		before := slirpProcs()
		r := s.mustNook(t, "run", "--rm", "--network", "lab", "demo", "ip", "-o", "link", "show", "eth0")
		if !strings.Contains(r.Stdout, "eth0") {
			t.Errorf("no eth0 in a member:\n%s", r)
		}
		assertNetworkIdle(t, s, "lab", "a member's normal exit")
		assertSlirpGone(t, before, "a member's normal exit")
	})
	for _, victim := range []string{"container", "nook", "monitor"} {
		t.Run("kill-"+victim, func(t *testing.T) {
			arg := strconv.Itoa(700000 + os.Getpid()%200000)
			name := "ukill-" + victim
			before := slirpProcs()
			var cmd *exec.Cmd
			if victim == "monitor" {
				s.runDetached(t, name, "--network", "lab", "demo", "sleep", arg)
			} else {
				cmd = s.command(t.Context(), nil, "run", "--name", name, "--network", "lab", "demo", "sleep", arg)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.nook(t, "rm", "-f", name) })
			}
			ctrPid := findContainerProc(t, []string{"sleep", arg}, 30*time.Second)
			if len(keeperProcs()) != 1 {
				t.Fatalf("while a member runs, want one keeper, have %v", keeperProcs())
			}
			kill := ctrPid
			switch victim {
			case "nook":
				kill = cmd.Process.Pid
			case "monitor":
				kill = parentPid(t, ctrPid)
			}
			if err := syscall.Kill(kill, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 %d (%s): %v", kill, victim, err)
			}
			if cmd != nil {
				_ = cmd.Wait()
			}
			assertNetworkIdle(t, s, "lab", "kill -9 of the "+victim)
			assertSlirpGone(t, before, "kill -9 of the "+victim)
		})
	}
}

// TestNetworkInfoBackends: `nook info` lists the network backends that work here, and says why
// the others do not; with a PATH that holds only the ID-mapping helpers, none but none and host
// work, each for a stated reason.
func TestNetworkInfoBackends(t *testing.T) {
	s := useMain(t)
	out := s.mustNook(t, "info").Stdout
	kv := parseInfo(t, out)
	backends := kv["network.backends"]
	if why := slirpUnusable(); why == "" && !strings.Contains(backends, "slirp4netns") {
		t.Errorf("slirp4netns works here but nook info lists backends %q", backends)
	}
	if !strings.Contains(backends, "bridge") {
		t.Errorf("user networks work here (the other tests use them) but nook info lists backends %q", backends)
	}

	bin := filepath.Join(baseDir, "info-minpath")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, helper := range []string{"newuidmap", "newgidmap", "getsubids"} {
		if p, err := exec.LookPath(helper); err == nil {
			_ = os.Symlink(p, filepath.Join(bin, helper))
		}
	}
	r := s.nookEnv(t, []string{"PATH=" + bin}, "", "info")
	if r.Code != 0 {
		t.Fatalf("nook info with PATH=%s: exit %d\n%s", bin, r.Code, r)
	}
	kv = parseInfo(t, r.Stdout)
	if got := kv["network.backends"]; got != "none, host" {
		t.Errorf("without slirp4netns, pasta and util-linux in PATH, backends = %q, want none, host", got)
	}
	for _, why := range []string{"slirp4netns: not usable: slirp4netns is not installed", "pasta: not usable: pasta is not installed", "bridge (user networks): not usable: nsenter is not installed"} {
		if !strings.Contains(r.Stdout, why) {
			t.Errorf("nook info does not say %q:\n%s", why, r.Stdout)
		}
	}
}

// inspectedEndpoint is one entry of a container's NetworkSettings.Networks.
type inspectedEndpoint struct {
	NetworkID, EndpointID, Gateway, IPAddress, MacAddress string
	IPPrefixLen                                           int
	Aliases                                               []string
}

type inspectedNetSettings struct {
	HostConfig      struct{ NetworkMode string }
	NetworkSettings struct {
		IPAddress, Gateway string
		IPPrefixLen        int
		Networks           map[string]inspectedEndpoint
		Ports              map[string]any
	}
}

func inspectNetSettings(t *testing.T, s *store, args ...string) inspectedNetSettings {
	t.Helper()
	r := s.mustNook(t, append(args, "--type", "container")...)
	var docs []inspectedNetSettings
	if err := json.Unmarshal([]byte(r.Stdout), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("nook %v: %v\n%s", args, err, r)
	}
	return docs[0]
}

// TestNetworkUserInspect: `nook inspect` shows a member's address, MAC, gateway and aliases on
// its network as Docker does, and they are the container's own (read inside it);
// `network inspect` lists the running members.
func TestNetworkUserInspect(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "unetinsp", storeOptions{}, false)
	netID := strings.TrimSpace(s.mustNook(t, "network", "create", "--subnet", "10.92.4.0/24", "lab").Stdout)
	s.runDetached(t, "web", "--network", "lab", "--network-alias", "db", "demo", "sleep", "600")
	ctrID := strings.TrimSpace(s.mustNook(t, "inspect", "--format", "{{.Id}}", "web").Stdout)

	d := inspectNetSettings(t, s, "inspect", "web")
	ep, ok := d.NetworkSettings.Networks["lab"]
	if !ok || len(d.NetworkSettings.Networks) != 1 {
		t.Fatalf("NetworkSettings.Networks of a member of lab: %+v", d.NetworkSettings.Networks)
	}
	if !strings.HasPrefix(ep.IPAddress, "10.92.4.") || ep.IPPrefixLen != 24 || ep.Gateway != "10.92.4.1" ||
		ep.NetworkID != netID || len(ep.EndpointID) != 64 || len(ep.Aliases) != 1 || ep.Aliases[0] != "db" {
		t.Errorf("Networks.lab = %+v, want an address of 10.92.4.0/24, gateway 10.92.4.1, network %s, alias db", ep, netID)
	}
	if d.HostConfig.NetworkMode != "lab" {
		t.Errorf("HostConfig.NetworkMode = %q, want lab", d.HostConfig.NetworkMode)
	}
	if d.NetworkSettings.IPAddress != "" {
		t.Errorf("top-level IPAddress %q for a member of a user network, want empty as Docker", d.NetworkSettings.IPAddress)
	}
	if d.NetworkSettings.Ports == nil {
		t.Errorf("NetworkSettings.Ports is null, want {}")
	}
	// What inspect says is what the container has.
	link := s.mustNook(t, "exec", "web", "ip", "-o", "addr", "show", "eth0").Stdout
	if !strings.Contains(link, ep.IPAddress+"/24") {
		t.Errorf("inspect says %s/24 but the container's eth0 is:\n%s", ep.IPAddress, link)
	}
	if mac := s.mustNook(t, "exec", "web", "cat", "/sys/class/net/eth0/address").Stdout; ep.MacAddress == "" || strings.TrimSpace(mac) != ep.MacAddress {
		t.Errorf("inspect says MAC %q, the container's eth0 has %q", ep.MacAddress, strings.TrimSpace(mac))
	}
	for _, args := range [][]string{
		{"inspect", "--format", "{{.NetworkSettings.Networks.lab.IPAddress}}", "web"},
		{"container", "inspect", "-f", "{{.NetworkSettings.Networks.lab.IPAddress}}", "web"},
	} {
		if got := strings.TrimSpace(s.mustNook(t, args...).Stdout); got != ep.IPAddress {
			t.Errorf("nook %v = %q, want %s", args, got, ep.IPAddress)
		}
	}

	// network inspect: the member under Containers, keyed by its ID, in Docker's shape.
	r := s.mustNook(t, "network", "inspect", "lab")
	var ns []struct {
		Containers map[string]struct{ Name, EndpointID, MacAddress, IPv4Address string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &ns); err != nil || len(ns) != 1 {
		t.Fatalf("network inspect lab: %v\n%s", err, r)
	}
	m, ok := ns[0].Containers[ctrID]
	if len(ns[0].Containers) != 1 || !ok || m.Name != "web" || m.IPv4Address != ep.IPAddress+"/24" || m.MacAddress != ep.MacAddress || m.EndpointID != ep.EndpointID {
		t.Errorf("network inspect lab Containers = %+v, want %s: web %s/24 %s", ns[0].Containers, ctrID, ep.IPAddress, ep.MacAddress)
	}

	// Stopped, it is still on lab (it joins at its next start), with no address, as Docker shows.
	s.mustNook(t, "stop", "-t", "1", "web")
	d = inspectNetSettings(t, s, "inspect", "web")
	if ep, ok := d.NetworkSettings.Networks["lab"]; !ok || ep.IPAddress != "" || ep.NetworkID != netID {
		t.Errorf("a stopped member's Networks: %+v, want lab with network %s and no address", d.NetworkSettings.Networks, netID)
	}
	if n := inspectNetwork(t, s, "lab"); len(n.Containers) != 0 {
		t.Errorf("network inspect lists a stopped container: %+v", n.Containers)
	}
}

// TestNetworkInspectDefault: a container on slirp4netns or pasta shows the address it has there.
func TestNetworkInspectDefault(t *testing.T) {
	requireSubIDs(t)
	s := newStore(t, "unetinspdef", storeOptions{}, false)
	var modes []string
	if why := slirpUnusable(); why == "" {
		modes = append(modes, "slirp4netns")
	} else {
		t.Logf("slirp4netns is not tested: %s", why)
	}
	if why := pastaUnusable(); why == "" {
		modes = append(modes, "pasta")
	} else {
		t.Logf("pasta is not tested: %s", why)
	}
	if len(modes) == 0 {
		skipf(t, "neither slirp4netns nor pasta works here")
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			name := "def-" + mode
			s.runDetached(t, name, "--network", mode, "demo", "sleep", "600")
			d := inspectNetSettings(t, s, "inspect", name)
			ep, ok := d.NetworkSettings.Networks[mode]
			if !ok || ep.IPAddress == "" || ep.IPPrefixLen == 0 || ep.Gateway == "" {
				t.Fatalf("Networks of a %s container: %+v", mode, d.NetworkSettings.Networks)
			}
			if mode == "slirp4netns" && (ep.IPAddress != "10.0.2.100" || ep.IPPrefixLen != 24 || ep.Gateway != "10.0.2.2") {
				t.Errorf("Networks.slirp4netns = %+v, want 10.0.2.100/24 via 10.0.2.2", ep)
			}
			if d.NetworkSettings.IPAddress != ep.IPAddress || d.NetworkSettings.Gateway != ep.Gateway {
				t.Errorf("top-level IPAddress %q gateway %q, want the default network's %s %s", d.NetworkSettings.IPAddress, d.NetworkSettings.Gateway, ep.IPAddress, ep.Gateway)
			}
			addrs := s.mustNook(t, "exec", name, "ip", "-4", "-o", "addr").Stdout
			if !strings.Contains(addrs, " "+ep.IPAddress+"/"+strconv.Itoa(ep.IPPrefixLen)+" ") {
				t.Errorf("inspect says %s/%d but the container has:\n%s", ep.IPAddress, ep.IPPrefixLen, addrs)
			}
			route := s.mustNook(t, "exec", name, "ip", "-4", "route", "show", "default").Stdout
			if !strings.Contains(route, "via "+ep.Gateway+" ") {
				t.Errorf("inspect says gateway %s but the container's default route is %q", ep.Gateway, route)
			}
			if got := strings.TrimSpace(s.mustNook(t, "inspect", "-f", "{{.NetworkSettings.Networks."+mode+".IPAddress}}", name).Stdout); got != ep.IPAddress {
				t.Errorf("--format Networks.%s.IPAddress = %q", mode, got)
			}
		})
	}
}

// TestNetworkUserConnect: `network connect` and `disconnect` change the network a stopped or
// created container joins at its next start; a running container is refused with one line
// that says why and what to do (exit 1, as Docker's network commands).
func TestNetworkUserConnect(t *testing.T) {
	requireSubIDs(t)
	requireSlirp(t)
	s := newStore(t, "unetconn", storeOptions{}, false)
	nh := netHelper(t)
	netID := strings.TrimSpace(s.mustNook(t, "network", "create", "--subnet", "10.93.2.0/24", "lab").Stdout)
	s.mustNook(t, "network", "create", "other")
	refused := func(want string, args ...string) {
		t.Helper()
		r := s.nook(t, args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("nook %v: want exit 1 and one line saying %q\n%s", args, want, r)
		}
	}

	s.mustNook(t, "create", "--name", "c1", "--network", "slirp4netns", "-v", nh+":/nh:ro", "demo", "/nh/nh", "tcppeer", "8080")
	t.Cleanup(func() { s.nook(t, "rm", "-f", "c1") })
	if r := s.mustNook(t, "network", "connect", "--alias", "db", "lab", "c1"); r.Stdout != "" {
		t.Errorf("network connect printed %q, want nothing (as Docker)", r.Stdout)
	}
	d := inspectNetSettings(t, s, "inspect", "c1")
	if ep, ok := d.NetworkSettings.Networks["lab"]; !ok || ep.NetworkID != netID || len(ep.Aliases) != 1 || ep.Aliases[0] != "db" || d.HostConfig.NetworkMode != "lab" {
		t.Errorf("a created container connected to lab: NetworkMode %q, Networks %+v", d.HostConfig.NetworkMode, d.NetworkSettings.Networks)
	}
	refused("endpoint with name c1 already exists in network lab", "network", "connect", "lab", "c1")
	refused("disconnect it first", "network", "connect", "other", "c1")
	refused("network nosuch not found", "network", "connect", "nosuch", "c1")

	// Started, it is a member, reachable by its alias, and keeps its slirp4netns for outbound.
	s.mustNook(t, "start", "c1")
	addr := memberAddr(t, s, "lab", "c1")
	if !strings.HasPrefix(addr, "10.93.2.") {
		t.Errorf("c1's address on lab is %s", addr)
	}
	r := s.mustNook(t, "run", "--rm", "--network", "lab", "demo", "sh", "-c", ncRetry("db", "8080"))
	if !strings.HasPrefix(r.Stdout, "peer 10.93.2.") {
		t.Errorf("c1 by its alias db on lab: %q", r.Stdout)
	}
	if r := s.mustNook(t, "exec", "c1", "ip", "-o", "link"); !strings.Contains(r.Stdout, "tap0") || !strings.Contains(r.Stdout, "eth0") {
		t.Errorf("a connected slirp4netns container should have tap0 and eth0:\n%s", r)
	}

	// Running: refused both ways, and nothing changes.
	refused("stop it (nook stop c1), disconnect it, and start it again", "network", "disconnect", "lab", "c1")
	s.runDetached(t, "c2", "--network", "slirp4netns", "demo", "sleep", "600")
	refused("stop it (nook stop c2), connect it, and start it again", "network", "connect", "lab", "c2")
	if _, ok := inspectNetSettings(t, s, "inspect", "c2").NetworkSettings.Networks["lab"]; ok {
		t.Errorf("a refused connect changed c2's networks")
	}
	s.mustNook(t, "create", "--name", "c3", "--network", "none", "demo", "true")
	t.Cleanup(func() { s.nook(t, "rm", "-f", "c3") })
	refused("--network none", "network", "connect", "lab", "c3")

	// Stopped, it is disconnected: its next start has no eth0, and lab no member.
	s.mustNook(t, "stop", "-t", "1", "c1")
	if r := s.mustNook(t, "network", "disconnect", "lab", "c1"); r.Stdout != "" {
		t.Errorf("network disconnect printed %q, want nothing", r.Stdout)
	}
	d = inspectNetSettings(t, s, "inspect", "c1")
	if _, ok := d.NetworkSettings.Networks["lab"]; ok || d.HostConfig.NetworkMode != "slirp4netns" {
		t.Errorf("after disconnect: NetworkMode %q, Networks %+v, want slirp4netns only", d.HostConfig.NetworkMode, d.NetworkSettings.Networks)
	}
	refused("container c1 is not connected to network lab", "network", "disconnect", "lab", "c1")
	s.mustNook(t, "start", "c1")
	if r := s.mustNook(t, "exec", "c1", "ip", "-o", "link"); strings.Contains(r.Stdout, "eth0") {
		t.Errorf("c1 still has eth0 after its disconnect and start:\n%s", r)
	}
	if n := inspectNetwork(t, s, "lab"); len(n.Containers) != 0 {
		t.Errorf("lab still lists members after c1's disconnect: %+v", n.Containers)
	}
	// Disconnect from the network, then connect to another: both while stopped.
	s.mustNook(t, "stop", "-t", "1", "c1")
	s.mustNook(t, "network", "connect", "other", "c1")
	s.mustNook(t, "start", "c1")
	if got := memberAddr(t, s, "other", "c1"); got == "" {
		t.Errorf("c1 is not a member of other after connect and start")
	}
}
