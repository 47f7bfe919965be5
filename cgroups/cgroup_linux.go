package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// parentName is the cgroup under the delegated root that holds nook's
// containers: it never holds a process, so that it may pass controllers
// down (cgroup v2's "no internal processes" rule).
const parentName = "nook"

// Cgroup is one container's cgroup.
type Cgroup struct {
	Path string // directory under the cgroup2 mount
}

// PathFor is where the container id's cgroup is under d.
func PathFor(d Delegation, id string) string {
	return filepath.Join(d.Root, parentName, id)
}

// Check says whether r can be enforced under d, before anything is
// created: an error names what is missing and how to get it.
func Check(d Delegation, r *specs.LinuxResources) error {
	_, ctrls, err := Files(r)
	if err != nil {
		return err
	}
	if len(ctrls) == 0 {
		return nil
	}
	if !d.Usable() {
		return fmt.Errorf("%w: %s", ErrNotDelegated, d.Reason)
	}
	if missing := d.Missing(ctrls); len(missing) > 0 {
		return fmt.Errorf("%w: the controller(s) %s are not delegated to the user under %s (delegated: %s); %s",
			ErrNotDelegated, strings.Join(missing, ", "), d.Root, strings.Join(d.Controllers, " "), HowToDelegate)
	}
	return nil
}

// Create makes the container's cgroup under d with the limits r. The
// caller moves the container's first process into it.
func Create(d Delegation, id string, r *specs.LinuxResources) (*Cgroup, error) {
	if err := Check(d, r); err != nil {
		return nil, err
	}
	files, _, err := Files(r)
	if err != nil {
		return nil, err
	}
	parent := filepath.Join(d.Root, parentName)
	if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create cgroup %s: %w", parent, err)
	}
	// Pass every delegated controller down to the containers, so that
	// stats work even without limits; a controller the root's children
	// already get needs no write.
	if err := enable(d.Root, d.Controllers); err != nil {
		return nil, err
	}
	if err := enable(parent, d.Controllers); err != nil {
		return nil, err
	}
	c := &Cgroup{Path: PathFor(d, id)}
	if err := os.Mkdir(c.Path, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", c.Path, err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(c.Path, f.Name), []byte(f.Value), 0); err != nil {
			_ = c.Destroy()
			return nil, fmt.Errorf("set %s to %q in %s: %w", f.Name, f.Value, c.Path, err)
		}
	}
	return c, nil
}

func enable(dir string, ctrls []string) error {
	have := fields(filepath.Join(dir, "cgroup.subtree_control"))
	for _, c := range ctrls {
		found := false
		for _, h := range have {
			found = found || h == c
		}
		if found {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("enable the %s controller in %s: %w (the cgroup holds processes; run nook under `systemd-run --user --scope`)", c, dir, err)
			}
			return fmt.Errorf("enable the %s controller in %s: %w", c, dir, err)
		}
	}
	return nil
}

// AddProcess moves pid into the cgroup.
func (c *Cgroup) AddProcess(pid int) error {
	if err := os.WriteFile(filepath.Join(c.Path, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("move the container into its cgroup %s: %w", c.Path, err)
	}
	return nil
}

// Destroy kills whatever is left in the cgroup (cgroup.kill, Linux 5.14)
// and removes it.
func (c *Cgroup) Destroy() error {
	if c == nil {
		return nil
	}
	_ = os.WriteFile(filepath.Join(c.Path, "cgroup.kill"), []byte("1"), 0)
	var err error
	for i := 0; i < 50; i++ {
		if err = unix.Rmdir(c.Path); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the killed processes are still exiting
	}
	return fmt.Errorf("remove cgroup %s: %w", c.Path, err)
}

// Stats is a cgroup's usage.
type Stats struct {
	CPUUsec     uint64 // cpu.stat usage_usec
	MemoryUsage uint64 // memory.current
	MemoryLimit uint64 // memory.max; 0 for none
	Pids        uint64 // pids.current
	PidsLimit   uint64 // pids.max; 0 for none
	IORead      uint64 // io.stat rbytes, every device
	IOWrite     uint64 // io.stat wbytes
}

// ReadStats reads the usage of the cgroup at dir; missing files (a
// controller not enabled) leave their fields at 0.
func ReadStats(dir string) (Stats, error) {
	var s Stats
	if _, err := os.Stat(dir); err != nil {
		return s, err
	}
	num := func(name string) uint64 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0
		}
		v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return v // "max" reads as 0: no limit
	}
	s.MemoryUsage, s.MemoryLimit = num("memory.current"), num("memory.max")
	s.Pids, s.PidsLimit = num("pids.current"), num("pids.max")
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.stat")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				s.CPUUsec, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "io.stat")); err == nil {
		for _, f := range strings.Fields(string(b)) { // "8:0 rbytes=N wbytes=N rios=N ..." per device
			if v, ok := strings.CutPrefix(f, "rbytes="); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				s.IORead += n
			} else if v, ok := strings.CutPrefix(f, "wbytes="); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				s.IOWrite += n
			}
		}
	}
	return s, nil
}
