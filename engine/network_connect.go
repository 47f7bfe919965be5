package engine

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nook-containers/nook/netuser"
)

// `nook network connect` and `disconnect` change which user network a container joins at its
// next start; they refuse a running container (decisions.md, "User-defined networks": a running
// container's network namespace belongs to the user namespace it was started in).

// ConnectNetwork is `nook network connect NETWORK CONTAINER`: the stopped or created container
// joins the network at its next start, keeping its own outbound network (slirp4netns or pasta).
func (e *Engine) ConnectNetwork(netRef, ctrRef string, aliases []string) error {
	n, err := netuser.Find(e.Paths.GraphRoot, netRef)
	if err != nil {
		return err
	}
	for _, a := range aliases {
		if !validName.MatchString(a) {
			return fmt.Errorf("invalid network alias %q: use letters, digits, _ . and -", a)
		}
	}
	return e.changeNetwork(ctrRef, func(c *Container) (network, error) {
		return connectTo(c, n.Name, aliases)
	})
}

// DisconnectNetwork is `nook network disconnect NETWORK CONTAINER`: the stopped or created
// container no longer joins the network; it keeps its outbound network.
func (e *Engine) DisconnectNetwork(netRef, ctrRef string) error {
	name := netRef
	if n, err := netuser.Find(e.Paths.GraphRoot, netRef); err == nil {
		name = n.Name
	} else if !errors.Is(err, netuser.ErrNotFound) {
		return err
	}
	// A removed network's name still disconnects its containers, which could not start anyway.
	return e.changeNetwork(ctrRef, func(c *Container) (network, error) {
		return disconnectFrom(c, name)
	})
}

// changeNetwork rewrites the container's network under its lock (start takes it too).
func (e *Engine) changeNetwork(ref string, change func(c *Container) (network, error)) error {
	c, err := e.FindContainer(ref)
	if err != nil {
		return err
	}
	unlock, err := e.lockContainer(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if c, err = e.FindContainer(c.ID); err != nil { // its state now that nothing starts it
		return err
	}
	nw, err := change(c)
	if err != nil {
		return err
	}
	sc, err := e.Store.Container(c.ID)
	if err != nil {
		return err
	}
	var rec Record
	if err := json.Unmarshal([]byte(sc.Metadata), &rec); err != nil {
		return fmt.Errorf("read container %s: %w", c.Name, err)
	}
	rec.Net = &nw
	return e.saveRecord(c.ID, &rec)
}

// connectTo is c's network once connected to user network name, or why it cannot be.
func connectTo(c *Container, name string, aliases []string) (network, error) {
	nw := network{Mode: NetNone}
	if c.Net != nil {
		nw = *c.Net
	}
	switch {
	case nw.Bridge == name:
		return nw, fmt.Errorf("endpoint with name %s already exists in network %s", c.Name, name)
	case nw.Bridge != "":
		return nw, fmt.Errorf("cannot connect container %s to network %s: it is on network %s, and nook puts a container on one user network only (its engine runs in that network's user namespace); disconnect it first (nook network disconnect %s %s)",
			c.Name, name, nw.Bridge, nw.Bridge, c.Name)
	case nw.Mode == NetHost:
		return nw, fmt.Errorf("cannot connect container %s to network %s: it uses the host's network; create it again with --network %s", c.Name, name, name)
	case nw.Mode == NetNone:
		return nw, fmt.Errorf("cannot connect container %s to network %s: it was created with --network none; create it again with --network %s", c.Name, name, name)
	case c.Active():
		return nw, fmt.Errorf("cannot connect running container %s to network %s: its network namespace belongs to the user namespace it was started in, not the network's; stop it (nook stop %s), connect it, and start it again",
			c.Name, name, c.Name)
	}
	nw.Bridge, nw.Aliases = name, aliases
	return nw, nil
}

// disconnectFrom is c's network once disconnected from user network name, or why it cannot be.
func disconnectFrom(c *Container, name string) (network, error) {
	if c.Net == nil || c.Net.Bridge != name {
		return network{}, fmt.Errorf("container %s is not connected to network %s", c.Name, name)
	}
	if c.Active() {
		return network{}, fmt.Errorf("cannot disconnect running container %s from network %s: its network namespace belongs to the network's user namespace for as long as it runs; stop it (nook stop %s), disconnect it, and start it again",
			c.Name, name, c.Name)
	}
	nw := *c.Net
	nw.Bridge, nw.Aliases = "", nil
	return nw, nil
}
