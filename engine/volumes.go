package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Volume is a named volume: a directory under the graph root
// (volumes/NAME/_data), created by the engine as root of the user
// namespace, so owned by the user, whom the container's root is.
type Volume struct {
	Name       string    `json:"Name"`
	Driver     string    `json:"Driver"`
	Mountpoint string    `json:"Mountpoint"`
	CreatedAt  time.Time `json:"CreatedAt"`
	Anonymous  bool      `json:"Anonymous,omitempty"`
}

func (e *Engine) volumesDir() string { return filepath.Join(e.Paths.GraphRoot, "volumes") }

func (e *Engine) volumeDir(name string) string { return filepath.Join(e.volumesDir(), name) }

// VolumeCreate creates a named volume ("" for a generated name).
func (e *Engine) VolumeCreate(name string) (Volume, error) {
	return e.volumeCreate(name, false)
}

func (e *Engine) volumeCreate(name string, anonymous bool) (Volume, error) {
	if name == "" {
		name = randomHex(32)
	}
	if !validName.MatchString(name) {
		return Volume{}, fmt.Errorf("invalid volume name %q: use letters, digits, _ . and -", name)
	}
	if v, err := e.VolumeInspect(name); err == nil {
		return v, nil // Docker's create is idempotent
	}
	dir := e.volumeDir(name)
	if err := os.MkdirAll(filepath.Join(dir, "_data"), 0o755); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	v := Volume{Name: name, Driver: "local", Mountpoint: filepath.Join(dir, "_data"), CreatedAt: time.Now().UTC().Truncate(time.Second), Anonymous: anonymous}
	b, _ := json.Marshal(&v)
	if err := os.WriteFile(filepath.Join(dir, "volume.json"), b, 0o600); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	return v, nil
}

// VolumeInspect returns the volume called name.
func (e *Engine) VolumeInspect(name string) (Volume, error) {
	var v Volume
	if !validName.MatchString(name) {
		return v, fmt.Errorf("no such volume: %s", name)
	}
	b, err := os.ReadFile(filepath.Join(e.volumeDir(name), "volume.json"))
	if err != nil {
		return v, fmt.Errorf("no such volume: %s", name)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("volume %s: %w", name, err)
	}
	v.Mountpoint = filepath.Join(e.volumeDir(name), "_data") // follows a moved graph root
	return v, nil
}

// Volumes lists the volumes, by name.
func (e *Engine) Volumes() ([]Volume, error) {
	ents, err := os.ReadDir(e.volumesDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Volume
	for _, d := range ents {
		if v, err := e.VolumeInspect(d.Name()); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// volumeUsers are the containers that use a volume and still exist. A
// container that uses it leaves a mark (users/ID); marks of removed
// containers are dropped here.
func (e *Engine) volumeUsers(name string) []string {
	dir := filepath.Join(e.volumeDir(name), "users")
	ents, _ := os.ReadDir(dir)
	var live []string
	for _, d := range ents {
		if c, err := e.Store.Container(d.Name()); err == nil && c != nil {
			live = append(live, d.Name())
		} else {
			_ = os.Remove(filepath.Join(dir, d.Name()))
		}
	}
	return live
}

// volumeFor returns the volume a container mounts, creating it when
// missing ("" makes an anonymous one), and marks the container as a user.
func (e *Engine) volumeFor(name, containerID string) (Volume, error) {
	v, err := e.volumeCreate(name, name == "")
	if err != nil {
		return v, err
	}
	users := filepath.Join(e.volumeDir(v.Name), "users")
	if err := os.MkdirAll(users, 0o700); err != nil {
		return v, err
	}
	if err := os.WriteFile(filepath.Join(users, containerID), nil, 0o600); err != nil {
		return v, err
	}
	return v, nil
}

// VolumeRemove removes volumes; one in use by a container is refused
// unless force.
func (e *Engine) VolumeRemove(name string, force bool) error {
	if _, err := e.VolumeInspect(name); err != nil {
		return err
	}
	if users := e.volumeUsers(name); len(users) > 0 && !force {
		short := make([]string, len(users))
		for i, u := range users {
			short[i] = u[:min(12, len(u))]
		}
		return fmt.Errorf("volume %s is in use by container(s) %s: remove them first (or use --force)", name, strings.Join(short, ", "))
	}
	if err := os.RemoveAll(e.volumeDir(name)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// VolumePrune removes every volume no container uses and returns their names.
func (e *Engine) VolumePrune() ([]string, error) {
	vs, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, v := range vs {
		if len(e.volumeUsers(v.Name)) > 0 {
			continue
		}
		if err := e.VolumeRemove(v.Name, false); err != nil {
			return gone, err
		}
		gone = append(gone, v.Name)
	}
	return gone, nil
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
