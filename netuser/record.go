package netuser

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Network is a user-defined network's record: $GRAPHROOT/networks/NAME.json, kept across
// reboots as Docker keeps its networks.
type Network struct {
	Name     string            `json:"name"`
	ID       string            `json:"id"`
	Driver   string            `json:"driver"` // bridge
	Subnet   string            `json:"subnet"` // 10.89.N.0/24 unless --subnet
	Gateway  string            `json:"gateway"`
	Internal bool              `json:"internal,omitempty"` // no outbound: members get no slirp4netns
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
}

// ErrNotFound is a network that has no record.
var ErrNotFound = errors.New("network not found")

// notFound is ErrNotFound for one network, worded as Docker's.
type notFound struct{ name string }

func (e *notFound) Error() string        { return "network " + e.name + " not found" }
func (e *notFound) Is(target error) bool { return target == ErrNotFound }

// Reserved are --network values that are not user networks (Docker's predefined ones too).
var Reserved = []string{"none", "host", "slirp4netns", "pasta", "bridge", "default", "container", "private"}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// IsReserved says whether name (or the mode part of NAME:OPTIONS) is a built-in network mode.
func IsReserved(name string) bool {
	mode, _, _ := strings.Cut(name, ":")
	for _, r := range Reserved {
		if mode == r {
			return true
		}
	}
	return false
}

func recordDir(graphRoot string) string { return filepath.Join(graphRoot, "networks") }

func recordPath(graphRoot, name string) string {
	return filepath.Join(recordDir(graphRoot), name+".json")
}

// Load reads network name's record.
func Load(graphRoot, name string) (*Network, error) {
	if !validName.MatchString(name) {
		return nil, &notFound{name}
	}
	b, err := os.ReadFile(recordPath(graphRoot, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &notFound{name}
	}
	if err != nil {
		return nil, fmt.Errorf("read network %s: %w", name, err)
	}
	var n Network
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("read network %s: %w", name, err)
	}
	return &n, nil
}

// Find reads a network by name, full ID or unique ID prefix, as Docker accepts.
func Find(graphRoot, ref string) (*Network, error) {
	if n, err := Load(graphRoot, ref); err == nil || !errors.Is(err, ErrNotFound) {
		return n, err
	}
	all, err := List(graphRoot)
	if err != nil {
		return nil, err
	}
	var found *Network
	for i := range all {
		if strings.HasPrefix(all[i].ID, ref) {
			if found != nil {
				return nil, fmt.Errorf("network ID prefix %s is ambiguous: give more of it", ref)
			}
			found = &all[i]
		}
	}
	if found == nil {
		return nil, &notFound{ref}
	}
	return found, nil
}

// List reads every network's record, sorted by name.
func List(graphRoot string) ([]Network, error) {
	ents, err := os.ReadDir(recordDir(graphRoot))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Network
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if n, err := Load(graphRoot, name); err == nil {
			out = append(out, *n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CreateOptions are `nook network create`'s settings.
type CreateOptions struct {
	Name     string
	Driver   string // "" or bridge
	Subnet   string // "" picks the first free 10.89.N.0/24
	Gateway  string // "" is the subnet's first address
	Internal bool
	Labels   map[string]string
}

// Create records a new network. Nothing runs until a container joins it.
func Create(graphRoot string, o CreateOptions) (*Network, error) {
	if !validName.MatchString(o.Name) {
		return nil, fmt.Errorf("invalid network name %q: use letters, digits, _ . and -", o.Name)
	}
	if IsReserved(o.Name) {
		return nil, fmt.Errorf("network name %q is reserved for a built-in network mode: choose another name", o.Name)
	}
	if o.Driver != "" && o.Driver != "bridge" {
		return nil, fmt.Errorf("network driver %q is not supported: nook has the bridge driver only", o.Driver)
	}
	if err := os.MkdirAll(recordDir(graphRoot), 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockPath(filepath.Join(recordDir(graphRoot), "networks.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := Load(graphRoot, o.Name); err == nil {
		return nil, fmt.Errorf("network with name %s already exists", o.Name)
	}
	all, err := List(graphRoot)
	if err != nil {
		return nil, err
	}
	subnet, err := chooseSubnet(o.Subnet, all)
	if err != nil {
		return nil, err
	}
	gw := firstHost(subnet)
	if o.Gateway != "" {
		ip := net.ParseIP(o.Gateway).To4()
		if ip == nil || !subnet.Contains(ip) {
			return nil, fmt.Errorf("invalid gateway %q: give an IPv4 address of the subnet %s", o.Gateway, subnet)
		}
		gw = ip
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	n := &Network{Name: o.Name, ID: hex.EncodeToString(id), Driver: "bridge", Subnet: subnet.String(),
		Gateway: gw.String(), Internal: o.Internal, Labels: o.Labels, Created: time.Now().UTC()}
	b, _ := json.MarshalIndent(n, "", "  ")
	tmp := recordPath(graphRoot, o.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, recordPath(graphRoot, o.Name)); err != nil {
		return nil, err
	}
	return n, nil
}

// slirpNet is slirp4netns' network, which every member that has outbound traffic also has on
// tap0: a user network must not overlap it.
var _, slirpNet, _ = net.ParseCIDR("10.0.2.0/24")

func overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// chooseSubnet parses --subnet, or picks the first 10.89.N.0/24 no network has (as Podman
// does for the networks it creates).
func chooseSubnet(want string, all []Network) (*net.IPNet, error) {
	var taken []*net.IPNet
	for _, n := range all {
		if _, s, err := net.ParseCIDR(n.Subnet); err == nil {
			taken = append(taken, s)
		}
	}
	if want != "" {
		ip, s, err := net.ParseCIDR(want)
		if err != nil || ip.To4() == nil {
			return nil, fmt.Errorf("invalid subnet %q: give an IPv4 network such as 10.90.0.0/24", want)
		}
		if ones, _ := s.Mask.Size(); ones > 30 || ones < 8 {
			return nil, fmt.Errorf("invalid subnet %q: the prefix length must be 8 to 30", want)
		}
		if overlaps(s, slirpNet) {
			return nil, fmt.Errorf("invalid subnet %q: it overlaps slirp4netns' network 10.0.2.0/24, which every member also has", want)
		}
		for i, t := range taken {
			if overlaps(s, t) {
				return nil, fmt.Errorf("invalid subnet %q: it overlaps network %s's subnet %s", want, all[i].Name, t)
			}
		}
		return s, nil
	}
	for i := 0; i < 256; i++ {
		_, s, _ := net.ParseCIDR(fmt.Sprintf("10.89.%d.0/24", i))
		free := true
		for _, t := range taken {
			free = free && !overlaps(s, t)
		}
		if free {
			return s, nil
		}
	}
	return nil, errors.New("every subnet of 10.89.0.0/16 is taken: give one with --subnet")
}

func firstHost(s *net.IPNet) net.IP {
	ip := append(net.IP(nil), s.IP.To4()...)
	ip[3]++
	return ip
}

// Remove deletes network name's record. It refuses a network that has members (running
// containers), as Docker does.
func Remove(graphRoot, runRoot string, n *Network) error {
	unlock, err := lockState(runRoot, n.Name)
	if err != nil {
		return err
	}
	defer unlock()
	leases, err := liveLeases(StateDir(runRoot, n.Name))
	if err != nil {
		return err
	}
	if len(leases) > 0 {
		return &InUseError{Name: n.Name, ID: n.ID}
	}
	if err := os.Remove(recordPath(graphRoot, n.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	return nil
}

// Prune removes every network that has no members (running containers) and that keep (nil:
// none) does not keep, and returns their names: `network prune`, and `system prune`, which keeps
// the networks its remaining containers are on.
func Prune(graphRoot, runRoot string, keep func(name string) bool) ([]string, error) {
	ns, err := List(graphRoot)
	if err != nil {
		return nil, err
	}
	var gone []string
	for i := range ns {
		if keep != nil && keep(ns[i].Name) {
			continue
		}
		var inUse *InUseError
		err := Remove(graphRoot, runRoot, &ns[i])
		if errors.As(err, &inUse) {
			continue
		}
		if err != nil {
			return gone, err
		}
		gone = append(gone, ns[i].Name)
	}
	return gone, nil
}

// InUseError is `network rm` of a network with members.
type InUseError struct{ Name, ID string }

func (e *InUseError) Error() string {
	return fmt.Sprintf("error while removing network: network %s id %s has active endpoints", e.Name, e.ID)
}
