package engine

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nook-containers/nook/overlay"
)

// Info describes how nook runs containers on this host.
type Info struct {
	Kernel       string
	User         string
	IDMap        IDMapInfo
	Driver       string
	Rootfs       overlay.Choice
	Paths        Paths
	Images       int
	Containers   int
	Network      []string
	NetworkNotes []string
	Cgroups      CgroupInfo
}

// CgroupInfo says which cgroup hierarchy the host has and what is delegated to the user.
type CgroupInfo struct {
	Version     string // v2, v1 or hybrid
	Controllers []string
	Note        string
}

// Info gathers the engine's view of the host.
func (e *Engine) Info() Info {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	in := Info{
		Kernel: unix.ByteSliceToString(uts.Release[:]),
		User:   fmt.Sprintf("uid %s, gid %s", os.Getenv("_CONTAINERS_ROOTLESS_UID"), os.Getenv("_CONTAINERS_ROOTLESS_GID")),
		IDMap:  e.IDMap, Driver: e.Driver, Rootfs: e.Rootfs, Paths: e.Paths,
		Network: []string{"none", "host"},
		Cgroups: cgroupInfo(),
	}
	if imgs, err := e.Store.Images(); err == nil {
		in.Images = len(imgs)
	}
	if cs, err := e.Store.Containers(); err == nil {
		in.Containers = len(cs)
	}
	return in
}

func cgroupInfo() CgroupInfo {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		ci := CgroupInfo{Version: "v2"}
		// What the user may use is what its own cgroup's parent delegates to it.
		b, _ := os.ReadFile("/proc/self/cgroup")
		path := strings.TrimPrefix(strings.TrimSpace(string(b)), "0::")
		if c, err := os.ReadFile("/sys/fs/cgroup" + path + "/cgroup.controllers"); err == nil && unix.Access("/sys/fs/cgroup"+path, unix.W_OK) == nil {
			ci.Controllers = strings.Fields(string(c))
		} else {
			ci.Note = "this cgroup is not delegated to the user: limits (--memory, --cpus, --pids-limit) need a systemd user session (systemd-run --user --scope)"
		}
		return ci
	}
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return CgroupInfo{Version: "hybrid", Note: "cgroup v1 controllers with an empty v2 hierarchy: cgroup limits need a cgroup v2 host with delegation"}
	}
	return CgroupInfo{Version: "v1", Note: "cgroup v1 cannot be delegated to an unprivileged user: cgroup limits need a cgroup v2 host"}
}
