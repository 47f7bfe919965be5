package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nook-containers/nook/monitor"
	"github.com/nook-containers/nook/userns"
)

// NetContainer is `--network container:NAME|ID`: the container joins another's network
// namespace (network.Container names it by ID).
const NetContainer = "container"

// Namespace sharing modes of --pid, --ipc and --uts (Docker's).
const (
	nsHost      = "host"
	nsPrivate   = "private"
	nsShareable = "shareable"
	nsContainer = "container:"
)

// checkNamespaceModes reads --pid, --ipc and --uts and resolves a container:REF to the
// container's full ID, as Docker records it (container:ID), so a rename does not lose it.
func (e *Engine) checkNamespaceModes(o *RunOptions) error {
	check := func(flag, v string, allowed ...string) (string, error) {
		if v == "" {
			return "", nil
		}
		if ref, ok := strings.CutPrefix(v, nsContainer); ok && flag != "uts" {
			if ref == "" {
				return "", flagError(v, flag, "container: needs a container's name or ID")
			}
			c, err := e.FindContainer(ref)
			if err != nil {
				return "", fmt.Errorf("--%s %s: %w", flag, v, err)
			}
			return nsContainer + c.ID, nil
		}
		for _, a := range allowed {
			if v == a {
				return v, nil
			}
		}
		return "", flagError(v, flag, "use %s", strings.Join(allowed, ", "))
	}
	var err error
	if o.PID, err = check("pid", o.PID, nsHost, "container:NAME|ID"); err != nil {
		return err
	}
	if o.IPC, err = check("ipc", o.IPC, nsPrivate, nsShareable, nsHost, "container:NAME|ID"); err != nil {
		return err
	}
	if o.UTS, err = check("uts", o.UTS, nsHost); err != nil {
		return err
	}
	if o.UTS == nsHost && o.Hostname != "" {
		return errors.New("conflicting options: hostname and the UTS mode: a container in the host's UTS namespace has the host's name")
	}
	return nil
}

// containerNetwork reads --network container:REF; the other options must not give the
// container a network of its own (Docker's conflicts).
func (e *Engine) containerNetwork(ref string, o RunOptions) (network, error) {
	if ref == "" {
		return network{}, flagError(NetContainer+":", "network", "container: needs a container's name or ID")
	}
	switch {
	case len(o.Publish) > 0 || o.PublishAll:
		return network{}, errors.New("conflicting options: port publishing and the container type network mode: publish the ports on the container whose network this one joins")
	case o.Hostname != "":
		return network{}, errors.New("conflicting options: hostname and the network mode: the container has the name of the container whose network it joins")
	case len(o.DNS) > 0 || len(o.DNSSearch) > 0 || len(o.DNSOptions) > 0:
		return network{}, errors.New("conflicting options: dns and the network mode: the container uses the resolv.conf of the container whose network it joins")
	case len(o.AddHosts) > 0:
		return network{}, errors.New("conflicting options: custom host-to-IP mapping and the network mode: the container uses the /etc/hosts of the container whose network it joins")
	case len(o.NetworkAliases) > 0:
		return network{}, errors.New("--network-alias works only for containers on a user network (nook network create)")
	}
	c, err := e.FindContainer(ref)
	if err != nil {
		return network{}, fmt.Errorf("--network container:%s: %w", ref, err)
	}
	return network{Mode: NetContainer, Container: c.ID}, nil
}

// joinTarget is the running container whose namespace kind ("network", "PID", "IPC") a
// container joins.
func (e *Engine) joinTarget(kind, id string) (*Container, error) {
	c, err := e.FindContainer(id)
	if err != nil {
		return nil, fmt.Errorf("cannot join the %s namespace of container %s: it was removed; remove this container or create it again", kind, shortID(id))
	}
	if c.State != StateRunning || c.InitPid <= 0 {
		return nil, fmt.Errorf("cannot join %s of a non running container: %s: start it first (nook start %s)", kind, c.Name, c.Name)
	}
	if c.Net != nil && c.Net.Bridge != "" && userns.JoinedNetwork() != c.Net.Bridge {
		return nil, fmt.Errorf("cannot join %s of container %s: it is on user network %s, whose namespaces this container cannot enter; join a container that is not on a user network", kind, c.Name, c.Net.Bridge)
	}
	return c, nil
}

// nsPath is the file of a process's namespace, to join.
func nsPath(pid int, file string) string {
	return "/proc/" + strconv.Itoa(pid) + "/ns/" + file
}

// sharedNamespaces resolves a container's --network container:, --pid, --ipc and --uts to the
// namespaces its init gets (nil when all are its own, the common case), and for a joined
// network the other container's /etc files and hostname. Called at each start: the other
// container's PID 1 may have changed since.
func (e *Engine) sharedNamespaces(o RunOptions, nw network) (*monitor.Namespaces, *etcFiles, string, error) {
	var ns monitor.Namespaces
	var files *etcFiles
	hostname := ""
	if nw.Mode == NetHost {
		ns.Network = "host"
	}
	if nw.Mode == NetContainer {
		c, err := e.joinTarget("network", nw.Container)
		if err != nil {
			return nil, nil, "", err
		}
		ns.Network = nsPath(c.InitPid, "net")
		// Docker's container mode: the other's /etc/hosts, /etc/resolv.conf and name.
		dir, err := e.Store.ContainerRunDirectory(c.ID)
		if err != nil {
			return nil, nil, "", err
		}
		files = &etcFiles{hosts: filepath.Join(dir, "hosts"), hostname: filepath.Join(dir, "hostname"), resolv: filepath.Join(dir, "resolv.conf")}
		if b, err := os.ReadFile(files.hostname); err == nil {
			hostname = strings.TrimSpace(string(b))
		}
	}
	if id, ok := strings.CutPrefix(o.PID, nsContainer); ok {
		c, err := e.joinTarget("PID", id)
		if err != nil {
			return nil, nil, "", err
		}
		ns.PID = nsPath(c.InitPid, "pid")
	} else if o.PID == nsHost {
		ns.PID = "host"
	}
	if id, ok := strings.CutPrefix(o.IPC, nsContainer); ok {
		c, err := e.joinTarget("IPC", id)
		if err != nil {
			return nil, nil, "", err
		}
		if c.Options == nil || (c.Options.IPC != nsShareable && c.Options.IPC != nsHost) {
			return nil, nil, "", fmt.Errorf("cannot join IPC of container %s: non-shareable IPC: create that container with --ipc shareable", c.Name)
		}
		ns.IPC = nsPath(c.InitPid, "ipc")
		if c.Options.IPC == nsHost {
			ns.IPC = "host"
		}
	} else if o.IPC == nsHost {
		ns.IPC = "host"
	}
	if o.UTS == nsHost {
		ns.UTS = "host"
	}
	if ns == (monitor.Namespaces{}) {
		return nil, files, hostname, nil
	}
	return &ns, files, hostname, nil
}
