package engine

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nook-containers/nook/slirp"
)

// This file reads the `nook run`/`nook create` flags that shape a container's /etc files, its
// stop, its IPC and network settings: --add-host, --dns*, --stop-signal, --stop-timeout,
// --cidfile, --pull, --expose, --group-add, --shm-size, --sysctl. Each is checked when the
// container is created, so that a bad value fails before anything exists, with Docker's words.

// HostGateway is --add-host's special address: the host, as the container's network reaches it.
const HostGateway = "host-gateway"

// flagError is pflag's and Docker's form of a bad flag value.
func flagError(value, flag string, format string, args ...any) error {
	return fmt.Errorf("invalid argument %q for \"--%s\" flag: %s", value, flag, fmt.Sprintf(format, args...))
}

// parseExtraHost reads --add-host HOST:IP (or HOST=IP, as Docker 25 and later); IP may be an
// IPv6 address (host:::1) or host-gateway.
func parseExtraHost(s string) (host, ip string, err error) {
	host, ip, ok := strings.Cut(s, "=")
	if !ok {
		host, ip, ok = strings.Cut(s, ":")
	}
	if !ok || host == "" {
		return "", "", flagError(s, "add-host", "bad format for add-host: %q", s)
	}
	// Docker allows [::1] too.
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if ip == HostGateway {
		return host, ip, nil
	}
	if net.ParseIP(ip) == nil {
		return "", "", flagError(s, "add-host", "invalid IP address in add-host: %q", ip)
	}
	return host, ip, nil
}

// extraHostLines are the /etc/hosts lines of the --add-host flags, host-gateway replaced by
// gateway (hostGateway's answer for the container's network).
func extraHostLines(flags []string, nw network) (string, error) {
	var b strings.Builder
	gateway := ""
	for _, s := range flags {
		host, ip, err := parseExtraHost(s)
		if err != nil {
			return "", err
		}
		if ip == HostGateway {
			if gateway == "" {
				if gateway, err = hostGatewayIP(nw); err != nil {
					return "", err
				}
			}
			ip = gateway
		}
		b.WriteString(ip + "\t" + host + "\n")
	}
	return b.String(), nil
}

// hostGatewayIP is what host-gateway means for a container's network. Docker's is the address
// of its bridge on the host; nook has no bridge on the host, so it is the address at which the
// container's network helper reaches the host:
//   - slirp4netns with allow_host_loopback=true: 10.0.2.2, which slirp4netns maps to the host's
//     127.0.0.1 (so services listening on the host's loopback are reached too);
//   - pasta with allow_host_loopback=true: the host's default gateway, which pasta maps to the
//     host (without it pasta gives the container the host's own address: the host cannot be
//     told apart, and nook says so);
//   - --network host: 127.0.0.1, the host itself;
//   - otherwise (slirp4netns without host loopback, a user network, none): the host's primary
//     IPv4 address (the source of its default route), which slirp4netns reaches through its
//     NAT: services listening on that address or on all addresses are reached, the host's
//     loopback is not.
func hostGatewayIP(nw network) (string, error) {
	switch {
	case nw.Mode == NetHost:
		return "127.0.0.1", nil
	case nw.Mode == NetSlirp && nw.Bridge == "" && nw.AllowHostLoopback:
		return slirp.GatewayIP, nil
	case nw.Mode == NetPasta && nw.AllowHostLoopback:
		if gw := defaultGateway(); gw != "" {
			return gw, nil
		}
		return "", errors.New("--add-host host-gateway: the host has no IPv4 default route for pasta to map to it")
	case nw.Mode == NetPasta:
		return "", errors.New("--add-host host-gateway: with pasta the container has the host's own address and cannot reach the host by it; use --network pasta:allow_host_loopback=true")
	}
	if ip := primaryIP(); ip != "" {
		return ip, nil
	}
	return "", errors.New("--add-host host-gateway: the host has no IPv4 address but loopback; give an address instead (--add-host NAME:IP)")
}

// primaryIP is the host's IPv4 address its default route leaves from; "" for none. A UDP
// "connect" sends nothing: it only chooses the route and the source address.
func primaryIP() string {
	if c, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		defer c.Close()
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok && !a.IP.IsLoopback() && !a.IP.IsUnspecified() {
			return a.IP.String()
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// defaultGateway is the host's IPv4 default gateway (/proc/net/route), "" for none.
func defaultGateway() string {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "00000000" {
			continue
		}
		v, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil || v == 0 {
			continue
		}
		// Little-endian, as the kernel prints it on the machines nook runs on (x86, arm64).
		return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).String()
	}
	return ""
}

var domainRE = regexp.MustCompile(`^(:?(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))(:?\.(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?\s*$`)

// checkDNS checks --dns (addresses), --dns-search (domains, or "." for none) and --dns-option
// as Docker's CLI does.
func checkDNS(o RunOptions) error {
	for _, s := range o.DNS {
		if net.ParseIP(s) == nil {
			return flagError(s, "dns", "%s is not an ip address", s)
		}
	}
	for _, s := range o.DNSSearch {
		if s == "." {
			continue
		}
		if strings.HasPrefix(s, ".") || len(s) > 255 || !domainRE.MatchString(s) {
			return flagError(s, "dns-search", "%s is not a valid domain", s)
		}
	}
	for _, s := range o.DNSOptions {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n") {
			return flagError(s, "dns-option", "%q is not a resolver option (as ndots:2)", s)
		}
	}
	return nil
}

// applyDNSFlags rewrites a container's resolv.conf (base, what nook writes for its network) with
// --dns, --dns-search and --dns-option, each replacing its own part of it as Docker's do, in
// Docker's order: search, nameserver, options. "--dns-search ." means no search list.
func applyDNSFlags(base string, dns, search, options []string) string {
	if len(dns) == 0 && len(search) == 0 && len(options) == 0 {
		return base
	}
	var baseNS, baseSearch, baseOpts []string
	for _, line := range strings.Split(base, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "nameserver" && len(f) >= 2:
			baseNS = append(baseNS, f[1])
		case f[0] == "search" || f[0] == "domain":
			baseSearch = f[1:] // the last one wins, as in resolv.conf(5)
		case f[0] == "options":
			baseOpts = append(baseOpts, f[1:]...)
		}
	}
	if len(dns) == 0 {
		dns = baseNS
	}
	if len(search) == 0 {
		search = baseSearch
	} else if slices.Equal(search, []string{"."}) {
		search = nil
	}
	if len(options) == 0 {
		options = baseOpts
	}
	var b strings.Builder
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	for _, ns := range dns {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return b.String()
}

// parseStopOptions checks --stop-signal (as Docker: a name, SIGNAME or a number) and
// --stop-timeout (seconds, -1 waits for ever).
func parseStopOptions(o RunOptions) error {
	if o.StopSignal != "" {
		if _, err := ParseSignal(o.StopSignal); err != nil {
			return fmt.Errorf("invalid signal: %s: give a name (SIGTERM, TERM) or a number", o.StopSignal)
		}
	}
	if o.StopTimeout != nil && *o.StopTimeout < -1 {
		return flagError(strconv.Itoa(*o.StopTimeout), "stop-timeout", "the timeout is a number of seconds, or -1 to wait for ever")
	}
	return nil
}

// cidFile is --cidfile: the file is claimed when the container is about to be created (an
// existing one is an error, as Docker's), and gets the full ID once it exists.
type cidFile struct {
	path string
	f    *os.File
}

func openCIDFile(path string) (*cidFile, error) {
	if path == "" {
		return nil, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err == nil {
		return nil, fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", path)
	}
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", path)
		}
		return nil, fmt.Errorf("failed to create the container ID file: %w", err)
	}
	return &cidFile{path: abs, f: f}, nil
}

// write puts the ID in the file; with id "" (the container was not made) it removes the file.
func (c *cidFile) write(id string) error {
	if c == nil {
		return nil
	}
	defer c.f.Close()
	if id == "" {
		_ = os.Remove(c.path)
		return nil
	}
	if _, err := c.f.WriteString(id); err != nil {
		_ = os.Remove(c.path)
		return fmt.Errorf("write the container ID file: %w", err)
	}
	return nil
}

// checkPull reads --pull: always, missing (the default) or never.
func checkPull(s string) (string, error) {
	switch s {
	case "", "missing":
		return "missing", nil
	case "always", "never":
		return s, nil
	}
	return "", flagError(s, "pull", "invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", s)
}

// parseExpose reads --expose PORT[/PROTO] or a range START-END[/PROTO] into ExposedPorts' keys
// ("80/tcp").
func parseExpose(s string) ([]string, error) {
	port, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, flagError(s, "expose", "invalid proto: %s", proto)
	}
	a, b, err := parsePortRange(port, "port")
	if err != nil || a == 0 {
		return nil, flagError(s, "expose", "invalid range format for --expose: %s", s)
	}
	var out []string
	for p := a; p <= b; p++ {
		out = append(out, strconv.Itoa(p)+"/"+proto)
	}
	return out, nil
}

// exposedSet is a container's ExposedPorts: the image's, --expose's and the container ports of
// -p, as Docker lists them.
func exposedSet(image map[string]struct{}, expose []string, ports []PortMapping) (map[string]struct{}, error) {
	out := map[string]struct{}{}
	for k := range image {
		if !strings.Contains(k, "/") {
			k += "/tcp"
		}
		out[k] = struct{}{}
	}
	for _, s := range expose {
		ks, err := parseExpose(s)
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			out[k] = struct{}{}
		}
	}
	for _, p := range ports {
		out[fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto)] = struct{}{}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// sortedKeys lists a set's keys in order.
func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parseShmSize reads --shm-size as Docker's RAMInBytes: a number of bytes, or with a unit b, k,
// m, g (kb, mb, ... too; powers of 1024). It must be more than 0.
func parseShmSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := ramInBytes(s)
	if err != nil {
		return 0, flagError(s, "shm-size", "invalid size: '%s'", s)
	}
	if n <= 0 {
		return 0, flagError(s, "shm-size", "invalid size: '%s': the size must be more than 0", s)
	}
	return n, nil
}

var ramRE = regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?$`)

func ramInBytes(s string) (int64, error) {
	m := ramRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("invalid size %q: give bytes or a number with b, k, m or g (64m)", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, err
	}
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[strings.ToLower(m[2])]
	return int64(v * mult), nil
}

// ipcSysctls are the sysctls of the IPC namespace that runc (and so Docker) let a container set.
var ipcSysctls = []string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}

// parseSysctls reads --sysctl KEY=VALUE. Only sysctls of the container's own namespaces are
// allowed, as runc validates them (libcontainer/configs/validate): the IPC namespace's
// (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) and, with a network namespace of its
// own, net.*. Others would change the host (or fail) and are refused.
func parseSysctls(flags []string, nw network) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(strings.ReplaceAll(k, "/", "."))
		if !ok || k == "" {
			return nil, flagError(kv, "sysctl", "sysctl '%s' is not a KEY=VALUE", kv)
		}
		switch {
		case slices.Contains(ipcSysctls, k), strings.HasPrefix(k, "fs.mqueue."):
		case strings.HasPrefix(k, "net."):
			if nw.Mode == NetHost {
				return nil, fmt.Errorf("sysctl %q not allowed in host network namespace: it would change the host's; drop it or leave --network host", k)
			}
		default:
			return nil, flagError(kv, "sysctl", "sysctl '%s' is not allowed: only the IPC namespace's (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) and the network namespace's (net.*) are", kv)
		}
		out[k] = v
	}
	return out, nil
}
