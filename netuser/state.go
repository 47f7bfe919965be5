package netuser

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/internal/proc"
)

// A running network's state lives in the run root, $RUNROOT/networks/NAME/:
//
//	lock         flock'd by whoever reads or changes the rest
//	keeper.json  the keeper's pid and start time, while it runs
//	keeper.sock  the keeper's socket (SOCK_SEQPACKET): every connection keeps it alive
//	leases.json  the members: container, names, address, /etc/hosts file
//
// All of it but the lock goes when the keeper exits; a reboot takes the rest.

// StateDir is network name's directory in the run root.
func StateDir(runRoot, name string) string { return filepath.Join(runRoot, "networks", name) }

// Lease is one member of a network.
type Lease struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Hostname string   `json:"hostname,omitempty"`
	Aliases  []string `json:"aliases,omitempty"`
	Addr     string   `json:"addr"`          // IPv4, without the prefix length
	MAC      string   `json:"mac,omitempty"` // eth0's hardware address (MACFor(Addr))
	Hosts    string   `json:"hosts"`         // the member's /etc/hosts (a file in its run directory)
	// ExtraHosts are the member's own lines (--add-host), after the localhost lines.
	ExtraHosts string `json:"extraHosts,omitempty"`
	Veth       string `json:"veth"` // the bridge's end of its veth pair
}

// MACFor is the hardware address a member's eth0 gets for address ip: 02:42 (locally
// administered, unicast) and the address's four bytes, as Docker gives its bridge's endpoints.
// Derived rather than random, so an address always goes with the same MAC and neighbours'
// ARP caches stay right when a member leaves and another takes its address.
func MACFor(ip net.IP) net.HardwareAddr {
	ip4 := ip.To4()
	if ip4 == nil {
		return nil
	}
	return net.HardwareAddr{0x02, 0x42, ip4[0], ip4[1], ip4[2], ip4[3]}
}

// keeperInfo is keeper.json.
type keeperInfo struct {
	Pid   int    `json:"pid"`
	Start string `json:"start"`
	ID    string `json:"id"` // the network's ID, against a network removed and created again
}

func lockPath(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// lockState takes network name's lock in the run root.
func lockState(runRoot, name string) (func(), error) {
	dir := StateDir(runRoot, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return lockPath(filepath.Join(dir, "lock"))
}

func readLeases(dir string) ([]Lease, error) {
	b, err := os.ReadFile(filepath.Join(dir, "leases.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ls []Lease
	if err := json.Unmarshal(b, &ls); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "leases.json"), err)
	}
	return ls, nil
}

func writeLeases(dir string, ls []Lease) error {
	path := filepath.Join(dir, "leases.json")
	if len(ls) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(ls)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// Members lists network name's members (for inspect), under its lock.
func Members(runRoot, name string) ([]Lease, error) {
	dir := StateDir(runRoot, name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	unlock, err := lockState(runRoot, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return liveLeases(dir)
}

// liveLeases are the leases of a running keeper: a killed keeper's leases name members whose
// veth pairs went with its namespace.
func liveLeases(dir string) ([]Lease, error) {
	if _, alive := readKeeper(dir); !alive {
		return nil, nil
	}
	return readLeases(dir)
}

// hostsHeader is what every container's /etc/hosts starts with (writeEtcFiles' localhost lines).
const hostsHeader = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// renderHosts is the /etc/hosts of a network's members: every member's address with its
// name, host name and aliases. extra is the reader's own --add-host lines.
func renderHosts(ls []Lease, extra string) []byte {
	var b strings.Builder
	b.WriteString(hostsHeader)
	b.WriteString(extra)
	for _, l := range ls {
		names := []string{l.Name}
		if l.Hostname != "" && l.Hostname != l.Name {
			names = append(names, l.Hostname)
		}
		for _, a := range l.Aliases {
			dup := false
			for _, n := range names {
				dup = dup || n == a
			}
			if !dup {
				names = append(names, a)
			}
		}
		b.WriteString(l.Addr + "\t" + strings.Join(names, " ") + "\n")
	}
	return []byte(b.String())
}

// rewriteHosts writes the members' /etc/hosts in place: each is bind-mounted into its
// container, and a bind mount follows the inode, which a rename would replace.
func rewriteHosts(ls []Lease) {
	for _, l := range ls {
		content := renderHosts(ls, l.ExtraHosts)
		f, err := os.OpenFile(l.Hosts, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			continue // a member whose run directory is gone is leaving anyway
		}
		_, _ = f.Write(content)
		f.Close()
	}
}

func readKeeper(dir string) (keeperInfo, bool) {
	var k keeperInfo
	b, err := os.ReadFile(filepath.Join(dir, "keeper.json"))
	if err != nil || json.Unmarshal(b, &k) != nil {
		return k, false
	}
	return k, proc.Alive(k.Pid, k.Start)
}

// socketPath is a path for keeper.sock short enough for sun_path (108 bytes), whatever the
// run root's length: the directory through an O_PATH descriptor of it. Close the descriptor
// once bound or connected.
func socketPath(dir string) (string, func(), error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fmt.Sprintf("/proc/self/fd/%d/keeper.sock", fd), func() { unix.Close(fd) }, nil
}

// RenameMember gives container id's lease on network name its new name and rewrites every
// member's /etc/hosts, so the others reach it by that name at once. Nothing to do when the
// network's keeper does not run or id is not a member (it joins under the new name next start).
// The keeper reads the leases again under the same lock at every join and leave.
func RenameMember(runRoot, name, id, newName string) error {
	dir := StateDir(runRoot, name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := lockState(runRoot, name)
	if err != nil {
		return err
	}
	defer unlock()
	ls, err := liveLeases(dir)
	if err != nil {
		return err
	}
	found := false
	for i := range ls {
		if ls[i].ID == id {
			ls[i].Name, found = newName, true
		}
	}
	if !found {
		return nil
	}
	if err := writeLeases(dir, ls); err != nil {
		return err
	}
	rewriteHosts(ls)
	return nil
}
