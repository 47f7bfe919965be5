package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.podman.io/storage"

	"github.com/nook-containers/nook/cgroups"
	"github.com/nook-containers/nook/internal/proc"
	"github.com/nook-containers/nook/internal/timing"
	"github.com/nook-containers/nook/monitor"
)

// Container states, as Docker names them.
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StateRestarting = "restarting" // between two runs of its restart policy
	StateExited     = "exited"
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

	// What `nook start` needs to start it again (absent in records of older nooks).
	Env        []string          `json:"env,omitempty"`     // the merged environment
	Options    *RunOptions       `json:"options,omitempty"` // the create/run flags
	Net        *network          `json:"network,omitempty"` // the network, with the host ports chosen
	StopSignal string            `json:"stopSignal,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"` // the image's, then --label's
	// ExposedPorts are the image's, --expose's and -p's container ports ("80/tcp").
	ExposedPorts []string `json:"exposedPorts,omitempty"`
}

// containerLabels are a new container's labels: the image's, overridden by --label KEY[=VALUE]
// (a KEY alone is an empty value, as in Docker).
func containerLabels(image map[string]string, flags []string) map[string]string {
	if len(image) == 0 && len(flags) == 0 {
		return nil
	}
	labels := make(map[string]string, len(image)+len(flags))
	for k, v := range image {
		labels[k] = v
	}
	for _, kv := range flags {
		k, v, _ := strings.Cut(kv, "=")
		labels[k] = v
	}
	return labels
}

// Active reports whether the container runs or is about to run again (restart policy).
func (c *Container) Active() bool { return c.State == StateRunning || c.State == StateRestarting }

// Container is a record with its store identity.
type Container struct {
	ID       string
	ImageID  string
	InitPid  int // the container's PID 1 as the host sees it, while it runs
	Restarts int
	Record

	watcherGone bool // recorded running, but the process that watched it has died
}

func (e *Engine) loadRecord(c *storage.Container) Container {
	ct := Container{ID: c.ID, ImageID: c.ImageID}
	if err := json.Unmarshal([]byte(c.Metadata), &ct.Record); err != nil {
		ct.State = StateExited
	}
	if len(c.Names) > 0 {
		ct.Name = c.Names[0]
	}
	e.applyState(&ct)
	return ct
}

// stateOf reads a container's state file (nil when there is none).
func (e *Engine) stateOf(id string) *monitor.State {
	dir, err := e.Store.ContainerRunDirectory(id)
	if err != nil {
		return nil
	}
	st, _ := monitor.ReadState(dir)
	return st
}

// applyState sets the container's live state from its state file, which the process watching
// it keeps in the run root. A "running" container whose watcher is gone (killed, or the
// machine rebooted and the run root is empty) has exited: report the truth, never a ghost.
func (e *Engine) applyState(ct *Container) {
	st := e.stateOf(ct.ID)
	if st == nil {
		switch {
		case ct.State == StateRunning && !proc.Alive(ct.Pid, ct.PidStart):
			ct.State, ct.ExitCode = StateExited, 137
			ct.watcherGone = true
		case ct.State == StateCreated && ct.Pid != 0 && !proc.Alive(ct.Pid, ct.PidStart):
			// A run's engine that died between creating and recording the start (a kill
			// while the init was being set up): created, and nothing will start it.
			ct.watcherGone = true
		}
		return
	}
	ct.Restarts = st.Restarts
	if !st.Started.IsZero() {
		ct.Started = st.Started
	}
	switch {
	case st.Status == monitor.StatusRunning && st.MonitorAlive():
		ct.State, ct.InitPid = StateRunning, st.Pid
	case st.Status == monitor.StatusRestarting && st.MonitorAlive():
		ct.State, ct.ExitCode, ct.Finished = StateRestarting, st.ExitCode, st.Finished
	case st.Status == monitor.StatusRestarting:
		ct.State, ct.ExitCode, ct.Finished = StateExited, st.ExitCode, st.Finished
	case st.Status == monitor.StatusRunning:
		ct.State, ct.ExitCode = StateExited, 137
		if ct.Finished.IsZero() || ct.Finished.Before(ct.Started) {
			ct.Finished = ct.Started
		}
		// The watcher is gone; its container went with it (the init dies with the process
		// that started it), unless its PID 1 is somehow still there.
		ct.watcherGone = !pidLive(st.Pid)
	default:
		ct.State, ct.ExitCode, ct.Finished = StateExited, st.ExitCode, st.Finished
	}
}

// selfStart is this engine's start time (against pid reuse), read once: every record and
// state file this engine writes as a container's watcher names it.
var selfStart = sync.OnceValue(proc.Self)

// pidLive says whether a process pid exists and has not ended (a pid with no start time to
// check against reuse: a reused pid reads as live, which only keeps a record longer).
func pidLive(pid int) bool {
	if pid <= 0 {
		return false
	}
	_, state, err := proc.Start(pid)
	return err == nil && state != "Z" && state != "X"
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
		ct := e.loadRecord(&cs[i])
		if ct.AutoRemove && ct.watcherGone && e.removeOrphaned(ct.ID) {
			continue
		}
		out = append(out, ct)
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

// RemoveContainer removes a container, its layer and its log. A running one needs force,
// which kills it first.
func (e *Engine) RemoveContainer(ref string, force bool) error {
	c, err := e.FindContainer(ref)
	if err != nil {
		return err
	}
	if c.Active() {
		if !force {
			return fmt.Errorf("container %s is running: stop it first, or use --force", ref)
		}
		conn, err := e.signalContainer(c, syscall.SIGKILL, true, true)
		if err == nil {
			e.waitGone(c, conn, 30*time.Second)
			if conn != nil {
				conn.Close()
			}
		}
	} else if st := e.stateOf(c.ID); st.MonitorAlive() {
		// Ended, and its monitor is cleaning up: let it finish.
		conn, _ := e.dialMonitor(c)
		e.waitGone(c, conn, 30*time.Second)
		if conn != nil {
			conn.Close()
		}
	}
	timing.Mark("engine rm found")
	unlock, err := e.lockContainer(c.ID)
	if err == nil {
		defer unlock()
	}
	timing.Mark("engine rm locked")
	if _, err := e.Store.Container(c.ID); err != nil {
		return nil // removed meanwhile (by its --rm cleanup)
	}
	if err := e.deleteEnded(c.ID); err != nil {
		return fmt.Errorf("remove container %s: %w", ref, err)
	}
	timing.Mark("engine rm deleted")
	return nil
}

// removeOrphaned removes a --rm container that nothing will remove: it was recorded running,
// and the process that watched it died without cleaning up (a kill -9 of nook, a crash, a
// reboot). Docker's daemon and Podman's conmon outlive their client, so they remove such a
// container when it ends; nook's watcher is the client itself (or the monitor), and its
// container ended with it, so the next command that lists containers removes it, as `nook rm`
// would. It says whether the container is gone.
// The lock is only tried: a caller that holds it (start, exec, a network change, each of which
// lists containers again under it) or another command working on the container leaves it be.
func (e *Engine) removeOrphaned(id string) bool {
	unlock, err := e.tryLockContainer(id)
	if err != nil {
		return false
	}
	defer unlock()
	sc, err := e.Store.Container(id)
	if err != nil {
		return true // removed meanwhile
	}
	if ct := e.loadRecord(sc); !ct.AutoRemove || !ct.watcherGone { // looked at again, under the lock
		return false
	}
	return e.deleteEnded(id) == nil
}

// deleteEnded removes an ended container, its layer and its log; the caller holds its lock.
func (e *Engine) deleteEnded(id string) error {
	if d := e.cgroups(); d.Usable() {
		_ = (&cgroups.Cgroup{Path: cgroups.PathFor(d, id)}).Destroy()
	}
	// A mount made in another nook's namespace is gone with it; the record may still say so,
	// and then the forced unmount clears it. A container whose cleanup has already unmounted
	// it (stop, or its monitor) is not unmounted again: that would cost a write of the mount
	// records and a rename of its mount point for nothing (DeleteContainer would still unmount
	// a layer left mounted).
	if n, err := e.Store.Mounted(id); err != nil || n > 0 {
		if _, err := e.Store.Unmount(id, true); err != nil && !errors.Is(err, storage.ErrLayerNotMounted) {
			_ = err
		}
	}
	timing.Mark("engine rm unmounted")
	return e.Store.DeleteContainer(id)
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
