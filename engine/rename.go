package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nook-containers/nook/monitor"
	"github.com/nook-containers/nook/netuser"
)

// ConflictError is a name another container has (Docker's "Conflict." message).
type ConflictError struct{ Name, ID string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("Conflict. The container name %q is already in use by container %q: remove or rename that container, or choose another name", "/"+e.Name, shortID(e.ID))
}

// Rename is `nook rename`: the container's name, everywhere nook keeps it — the store's names
// (what every command finds it by), its record, its monitor's config (a monitor that starts it
// again joins its user network under that name), and, while it runs on a user network, its
// lease and every member's /etc/hosts, so the others reach it by the new name at once, as
// Docker's DNS does. Its host name does not change (nor does Docker's).
func (e *Engine) Rename(ref, name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid container name %q: use letters, digits, _ . and -", name)
	}
	// Renames are serialized among nooks: containers/storage gives a name to a container by
	// taking it from any other, so the check below must not race with another rename.
	unlockNames, err := lockFile(filepath.Join(e.Paths.RunRoot, "names.lock"))
	if err != nil {
		return fmt.Errorf("rename container: %w", err)
	}
	defer unlockNames()
	c, err := e.FindContainer(ref)
	if err != nil {
		return err
	}
	unlock, err := e.lockContainer(c.ID)
	if err != nil {
		return fmt.Errorf("rename container %s: %w", ref, err)
	}
	defer unlock()
	if c, err = e.FindContainer(c.ID); err != nil {
		return err
	}
	if c.Name == name {
		return fmt.Errorf("container %s is already named %s: give another name", ref, name)
	}
	all, err := e.Store.Containers()
	if err != nil {
		return err
	}
	for _, o := range all {
		for _, n := range o.Names {
			if n == name && o.ID != c.ID {
				return &ConflictError{Name: name, ID: o.ID}
			}
		}
	}
	old := c.Name
	if err := e.Store.SetNames(c.ID, []string{name}); err != nil {
		return fmt.Errorf("rename container %s: %w", ref, err)
	}
	sc, err := e.Store.Container(c.ID)
	if err != nil {
		return fmt.Errorf("rename container %s: %w", ref, err)
	}
	var rec Record
	if json.Unmarshal([]byte(sc.Metadata), &rec) == nil {
		rec.Name = name
		if err := e.saveRecord(c.ID, &rec); err != nil {
			return fmt.Errorf("rename container %s: %w", ref, err)
		}
	}
	if c.Net == nil || c.Net.Bridge == "" {
		return nil
	}
	dir, err := e.Store.ContainerRunDirectory(c.ID)
	if err != nil {
		return nil
	}
	if err := renameInMonitorConfig(filepath.Join(dir, "monitor.json"), name); err != nil {
		return fmt.Errorf("rename container %s in its monitor's config: %w", old, err)
	}
	if err := netuser.RenameMember(e.Paths.RunRoot, c.Net.Bridge, c.ID, name); err != nil {
		return fmt.Errorf("rename container %s on network %s: %w", old, c.Net.Bridge, err)
	}
	return nil
}

// renameInMonitorConfig sets the member name in a monitor's config, if the container has one:
// the monitor reads it again before each start, to join its network by that name.
func renameInMonitorConfig(path, name string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var mc monitor.Config
	if err := json.Unmarshal(b, &mc); err != nil {
		return err
	}
	if mc.Network == nil || mc.Network.UserNet == nil {
		return nil
	}
	mc.Network.UserNet.Name = name
	b, err = json.Marshal(&mc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
