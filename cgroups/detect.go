package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Host versions, as `nook info` prints them.
const (
	V2     = "v2"
	Hybrid = "hybrid"
	V1     = "v1"
)

// Delegation is what the host lets the user do with cgroups.
type Delegation struct {
	Version string // V2, Hybrid or V1
	// Root is the directory (under the cgroup2 mount) of the highest
	// cgroup above the caller that the user owns; "" without delegation.
	Root string
	// Controllers are the controllers the user's containers can use: those
	// Root's children get (cgroup.subtree_control), or could get.
	Controllers []string
	// Reason says why there is no delegation, and how to get it.
	Reason string
}

// Usable reports whether containers can have limits at all.
func (d Delegation) Usable() bool { return d.Root != "" }

// Missing returns the controllers of want that d does not have.
func (d Delegation) Missing(want []string) []string {
	var out []string
	for _, w := range want {
		found := false
		for _, c := range d.Controllers {
			if c == w {
				found = true
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

// HowToDelegate is the advice that ends every "no delegation" error.
const HowToDelegate = "cgroup limits need a cgroup v2 host (systemd.unified_cgroup_hierarchy=1) where systemd delegates the user's slice: " +
	"run nook from a systemd user session or under `systemd-run --user --scope`, and for cpu and io add " +
	"Delegate=memory pids cpu cpuset io to user@.service (a drop-in in /etc/systemd/system/user@.service.d/)"

// Detect decides from the cgroup filesystem mounted at mnt (normally
// /sys/fs/cgroup), the content of /proc/self/cgroup and the caller's uid
// (as seen by stat in the caller's user namespace) where containers' cgroups
// can go. isV2 and isHybrid say what is mounted at mnt and mnt/unified.
func Detect(mnt, procSelfCgroup string, uid int, isV2, isHybrid bool) Delegation {
	switch {
	case isHybrid && !isV2:
		return Delegation{Version: Hybrid, Reason: "this host has cgroup v1 controllers with an empty cgroup v2 hierarchy (hybrid): nothing can be delegated to a user; " + HowToDelegate}
	case !isV2:
		return Delegation{Version: V1, Reason: "this host has cgroup v1, which cannot be delegated to a user; " + HowToDelegate}
	}
	d := Delegation{Version: V2}
	own := ""
	for _, line := range strings.Split(procSelfCgroup, "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			own = filepath.Clean("/" + strings.TrimSpace(p))
		}
	}
	if own == "" {
		d.Reason = "cannot tell this process's cgroup from /proc/self/cgroup; " + HowToDelegate
		return d
	}
	// The highest owned ancestor, the root of the delegated subtree: it must
	// be ours with its cgroup.procs (to move processes between its
	// descendants) and cgroup.subtree_control (to pass controllers down).
	comps := strings.Split(strings.TrimPrefix(own, "/"), "/")
	for i := 1; i <= len(comps) && own != "/"; i++ {
		dir := filepath.Join(mnt, filepath.Join(comps[:i]...))
		if ownedBy(dir, uid) && ownedBy(filepath.Join(dir, "cgroup.procs"), uid) && ownedBy(filepath.Join(dir, "cgroup.subtree_control"), uid) {
			d.Root = dir
			break
		}
	}
	if d.Root == "" {
		d.Reason = fmt.Sprintf("the cgroup %s of this process is not delegated to the user; %s", own, HowToDelegate)
		return d
	}
	// What Root's children already get, plus what Root could pass down
	// if it holds no process itself.
	sub := fields(filepath.Join(d.Root, "cgroup.subtree_control"))
	if procs, err := os.ReadFile(filepath.Join(d.Root, "cgroup.procs")); err == nil && strings.TrimSpace(string(procs)) == "" {
		sub = append(sub, fields(filepath.Join(d.Root, "cgroup.controllers"))...)
	}
	seen := map[string]bool{}
	for _, c := range sub {
		if !seen[c] {
			seen[c] = true
			d.Controllers = append(d.Controllers, c)
		}
	}
	if len(d.Controllers) == 0 {
		d.Reason = fmt.Sprintf("the delegated cgroup %s has no controllers to pass down; %s", d.Root, HowToDelegate)
	}
	return d
}

func fields(file string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

func ownedBy(path string, uid int) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid && fi.Mode().Perm()&0o200 != 0
}

// ErrNotDelegated is the error of a limit asked where it cannot be enforced.
var ErrNotDelegated = errors.New("cgroup limits are not available")
