package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.podman.io/storage"
)

// Container states, as Docker names them.
const (
	StateCreated = "created"
	StateRunning = "running"
	StateExited  = "exited"
)

// Record is what nook keeps about a container, in the store's metadata field.
type Record struct {
	Name       string    `json:"name"`
	Image      string    `json:"image"`
	Command    []string  `json:"command"`
	Created    time.Time `json:"created"`
	Started    time.Time `json:"started,omitzero"`
	Finished   time.Time `json:"finished,omitzero"`
	State      string    `json:"state"`
	ExitCode   int       `json:"exitCode"`
	Pid        int       `json:"pid,omitempty"`        // the engine that watches it
	PidStart   string    `json:"pidStart,omitempty"`   // that process's start time, against pid reuse
	AutoRemove bool      `json:"autoRemove,omitempty"` // --rm
}

// Container is a record with its store identity.
type Container struct {
	ID      string
	ImageID string
	Record
}

func (e *Engine) loadRecord(c *storage.Container) Container {
	ct := Container{ID: c.ID, ImageID: c.ImageID}
	if err := json.Unmarshal([]byte(c.Metadata), &ct.Record); err != nil {
		ct.State = StateExited
	}
	if len(c.Names) > 0 {
		ct.Name = c.Names[0]
	}
	// A "running" container whose engine is gone (killed, or the machine rebooted) has exited:
	// report the truth, never a ghost.
	if ct.State == StateRunning && !processAlive(ct.Pid, ct.PidStart) {
		ct.State = StateExited
		ct.ExitCode = 137
	}
	return ct
}

func (e *Engine) saveRecord(id string, r *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return e.Store.SetMetadata(id, string(b))
}

// Containers lists containers, newest first.
func (e *Engine) Containers() ([]Container, error) {
	cs, err := e.Store.Containers()
	if err != nil {
		return nil, err
	}
	out := make([]Container, 0, len(cs))
	for i := range cs {
		out = append(out, e.loadRecord(&cs[i]))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// ErrContainerUnknown is returned when no container matches.
var ErrContainerUnknown = errors.New("no such container")

// FindContainer finds a container by name, full ID or unambiguous ID prefix.
func (e *Engine) FindContainer(ref string) (*Container, error) {
	cs, err := e.Containers()
	if err != nil {
		return nil, err
	}
	var match []Container
	for _, c := range cs {
		if c.Name == ref || c.ID == ref {
			return &c, nil
		}
		if strings.HasPrefix(c.ID, ref) {
			match = append(match, c)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrContainerUnknown, ref)
	case 1:
		return &match[0], nil
	}
	return nil, fmt.Errorf("container ID prefix %s is ambiguous (%d containers): give more characters", ref, len(match))
}

// RemoveContainer removes a container and its layer. A running one needs force, which kills it.
func (e *Engine) RemoveContainer(ref string, force bool) error {
	c, err := e.FindContainer(ref)
	if err != nil {
		return err
	}
	if c.State == StateRunning {
		if !force {
			return fmt.Errorf("container %s is running: stop it first, or use --force", ref)
		}
		_ = syscall.Kill(c.Pid, syscall.SIGKILL)
	}
	if _, err := e.Store.Unmount(c.ID, true); err != nil && !errors.Is(err, storage.ErrLayerNotMounted) {
		// A mount made in another nook's namespace is gone with it; the record may still say so.
		_ = err
	}
	if err := e.Store.DeleteContainer(c.ID); err != nil {
		return fmt.Errorf("remove container %s: %w", ref, err)
	}
	return nil
}

// processAlive tells whether pid is still the process that started at start.
func processAlive(pid int, start string) bool {
	if pid <= 0 {
		return false
	}
	got, err := processStart(pid)
	return err == nil && got == start
}

func processStart(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", errors.New("bad stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", errors.New("bad stat")
	}
	return f[19], nil // field 22: starttime
}

var (
	adjectives = []string{"admiring", "brave", "calm", "clever", "eager", "focused", "gentle", "happy", "jolly", "keen", "lucid", "modest", "nifty", "quirky", "serene", "sharp", "tender", "vigilant", "wise", "zealous"}
	surnames   = []string{"banach", "curie", "dijkstra", "hopper", "kepler", "knuth", "lovelace", "noether", "pascal", "ritchie", "sierpinski", "shannon", "thompson", "torvalds", "turing", "ulam", "wozniak", "copernicus", "skłodowska", "tarski"}
)

// randomName gives a Docker-style name that no container has yet.
func (e *Engine) randomName() string {
	for i := 0; ; i++ {
		n := adjectives[rand.IntN(len(adjectives))] + "_" + surnames[rand.IntN(len(surnames))]
		if i > 10 {
			n += strconv.Itoa(rand.IntN(1000))
		}
		n = strings.ReplaceAll(n, "ł", "l")
		if _, err := e.Store.Container(n); err != nil {
			return n
		}
	}
}
